// The floor of the real provider path: CPU per token of the official `openai` SDK alone reading
// the benchmark's OpenAI-compatible server (bench/providers), with nothing of Sluice around it.
//   node bench/floors/openai-sdk-floor.ts [streams=200] [tokensPerSecond=20] [tokensPerStream=100] [fetch=global|node-stream|adapter|chunks|socket]
// Sluice's worker cannot spend less than this per token on that path (BENCHMARKS.md, "Floors").
// fetch=node-stream gives the SDK Sluice's own fetch (src/llm/node-stream-fetch.ts); global is Node's;
// adapter reads through Sluice's whole provider adapter instead (src/llm/openai-provider.ts: the SDK
// sends the request, openai-stream-events.ts reads the body, the guard and idle timeout around it);
// chunks is the adapter's body reader alone (Sluice's fetch, openai-stream-events.ts, nothing around
// it): adapter minus chunks is what the layers around the reader cost per token. socket reads the
// same bodies without parsing them: the floor of node:http itself on this machine.
import { spawn } from "node:child_process";
import { once } from "node:events";
import OpenAI from "openai";
import { nodeStreamFetch } from "../../src/llm/node-stream-fetch.ts";
import { createOpenAiProvider } from "../../src/llm/openai-provider.ts";
import { openAiStreamEvents } from "../../src/llm/openai-stream-events.ts";

const [streams = 200, rate = 20, count = 100] = process.argv.slice(2, 5).map(Number);
const fetchName = process.argv[5] ?? "global";
const provider = spawn(process.execPath, ["bench/providers/openai-compatible-server.ts"], { env: { ...process.env, BENCH_PORT: "0" }, stdio: ["ignore", "pipe", "inherit"] });
try {
  let output = "";
  const port = await new Promise<number>((resolve, reject) => {
    provider.once("exit", () => reject(new Error("the provider exited before listening")));
    provider.stdout.on("data", (data: Buffer) => {
      output += data.toString();
      const match = /"listening":(\d+)/.exec(output);
      if (match) resolve(Number(match[1]));
    });
  });
  const client = new OpenAI({ apiKey: "floor", baseURL: `http://127.0.0.1:${port}/v1`, maxRetries: 0, ...(fetchName === "node-stream" || fetchName === "chunks" || fetchName === "socket" ? { fetch: nodeStreamFetch } : {}) });
  // One adapter for all streams, as the worker has: building an SDK client per stream would cost ~10 µs per token here.
  const adapter = createOpenAiProvider({ apiKey: "floor", baseUrl: `http://127.0.0.1:${port}/v1`, idleTimeoutMs: 30_000 });
  const cpuBefore = process.cpuUsage();
  const startedAt = performance.now();
  let tokens = 0;
  await Promise.all(
    Array.from({ length: streams }, async (_, index) => {
      // Spread over one second, as the benchmark's ramp does.
      await new Promise((resolve) => setTimeout(resolve, (index * 1000) / streams));
      const content = `bench tokens_per_second=${rate} token_count=${count}`;
      if (fetchName === "adapter") {
        for await (const event of adapter.stream({ model: "floor", messages: [{ role: "user", content }] }, new AbortController().signal)) {
          if (event.type === "text-delta") tokens += 1;
        }
        return;
      }
      if (fetchName === "socket") {
        const response = await client.chat.completions.create({ model: "floor", messages: [{ role: "user", content }], stream: true }).asResponse();
        for await (const _read of response.body as unknown as AsyncIterable<Uint8Array>) continue;
        tokens += count;
        return;
      }
      if (fetchName === "chunks") {
        const response = await client.chat.completions.create({ model: "floor", messages: [{ role: "user", content }], stream: true, stream_options: { include_usage: true } }).asResponse();
        for await (const events of openAiStreamEvents(response)) for (const event of events) if (event.type === "text-delta") tokens += 1;
        return;
      }
      const stream = await client.chat.completions.create({
        model: "floor",
        messages: [{ role: "user", content }],
        stream: true,
        stream_options: { include_usage: true },
      });
      for await (const chunk of stream) if (chunk.choices[0]?.delta?.content) tokens += 1;
    }),
  );
  const cpu = process.cpuUsage(cpuBefore);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  console.log(
    `${fetchName === "adapter" ? "Sluice's openai adapter" : fetchName === "chunks" ? "Sluice's body reader alone" : fetchName === "socket" ? "node:http reads alone" : `openai SDK alone (${fetchName} fetch)`}: ${streams} streams x ${rate} tokens/s, ${tokens} tokens in ${(performance.now() - startedAt).toFixed(0)} ms; ` +
      `CPU ${cpuMs.toFixed(0)} ms = ${((cpuMs * 1000) / tokens).toFixed(1)} µs per token (user ${(cpu.user / tokens).toFixed(1)}, system ${(cpu.system / tokens).toFixed(1)})`,
  );
} finally {
  provider.kill();
  await once(provider, "exit");
}
