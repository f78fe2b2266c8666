import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { startFakeOpenAiServer } from "./fake-openai-server.ts";
import type { FakeProviderServer } from "./fake-provider-script.ts";

const servers: FakeProviderServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function start(): Promise<FakeProviderServer> {
  const server = await startFakeOpenAiServer();
  servers.push(server);
  return server;
}

function post(url: string, body: unknown, signal?: AbortSignal): Promise<Response> {
  return fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
    ...(signal ? { signal } : {}),
  });
}

describe("fake OpenAI server", () => {
  it("speaks Chat Completions SSE: content chunks, finish_reason, a usage chunk, then [DONE]", async () => {
    const server = await start();
    const response = await post(`${server.url}/chat/completions`, { model: "m", messages: [{ role: "user", content: "hi" }], stream: true });
    expect(response.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const payloads = (await response.text()).split("\n\n").filter(Boolean).map((frame) => frame.replace(/^data: /, ""));
    expect(payloads.at(-1)).toBe("[DONE]");
    const chunks = payloads.slice(0, -1).map((payload) => JSON.parse(payload) as { choices: Array<{ delta: { content?: string }; finish_reason: string | null }>; usage: unknown });
    const text = chunks.flatMap((chunk) => chunk.choices.map((choice) => choice.delta.content ?? "")).join("");
    expect(text).toBe(server.expectedText());
    expect(chunks.at(-2)?.choices[0]?.finish_reason).toBe("stop");
    expect(chunks.at(-1)).toMatchObject({ choices: [], usage: { prompt_tokens: 2, completion_tokens: 40 } });
  });

  it("switches the default mode through POST /__control/mode, and a fake-<mode> model overrides it", async () => {
    const server = await start();
    const control = await post(`${server.url.replace(/\/v1$/, "")}/__control/mode`, { mode: "server-error" });
    expect(control.status).toBe(204);
    const failing = await post(`${server.url}/chat/completions`, { model: "m", messages: [] });
    expect(failing.status).toBe(500);
    expect(await failing.json()).toMatchObject({ error: { type: "server_error" } });
    const overridden = await post(`${server.url}/chat/completions`, { model: "fake-rate-limit", messages: [] });
    expect(overridden.status).toBe(429);
    expect(overridden.headers.get("retry-after")).toBe("7");
    expect(await overridden.json()).toMatchObject({ error: { code: "rate_limit_exceeded" } });
    expect(server.requests.map((request) => request.mode)).toEqual(["server-error", "rate-limit"]);
    const rejected = await post(`${server.url.replace(/\/v1$/, "")}/__control/mode`, { mode: "nonsense" });
    expect(rejected.status).toBe(400);
  });

  it("ends stalled streams on close so nothing hangs", async () => {
    const server = await startFakeOpenAiServer({ mode: "stall" });
    const response = await post(`${server.url}/chat/completions`, { model: "m", messages: [] });
    const body = response.text();
    await server.close();
    await expect(body).rejects.toThrow();
    await server.requests[0]?.closed;
  });

  it("runs as its own process, printing its URL", async () => {
    const script = fileURLToPath(new URL("./fake-openai-server.ts", import.meta.url));
    const child = spawn(process.execPath, [script, "--port", "0", "--mode", "normal", "--seed", "42"], { stdio: ["ignore", "pipe", "inherit"] });
    try {
      const lines = createInterface({ input: child.stdout });
      const url = await new Promise<string>((resolve, reject) => {
        lines.once("line", resolve);
        child.once("exit", (code) => reject(new Error(`exited ${String(code)}`)));
      });
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1$/);
      const response = await post(`${url}/chat/completions`, { model: "m", messages: [] });
      expect(await response.text()).toContain("data: [DONE]");
    } finally {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    }
  });
});
