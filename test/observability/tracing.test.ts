import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { registerUser } from "../support/client/chat-api.ts";
import { sluiceEnvironment } from "../support/sluice/environment.ts";
import { startSluiceProcess } from "../support/sluice/sluice-process.ts";
import { readSse, textOf } from "../support/client/read-sse.ts";
import { startOtlpReceiver } from "../support/servers/otlp-receiver.ts";

// Real API and worker processes exporting OTLP/HTTP to a receiver in this test;
// and a real `sluice start` with tracing off whose module graph is recorded.

let scratch: string;
beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), "sluice-observability-"));
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

async function sharedEnv(label: string): Promise<Record<string, string>> {
  return {
    ...(await sluiceEnvironment(label)),
    // ~2 s of reply: the SSE viewer is certainly live for most flushes.
    SIMULATED_TOKENS_PER_SECOND: "30",
    SIMULATED_TOKEN_COUNT: "60",
    SHUTDOWN_GRACE_MS: "2000",
  };
}

/** Sends one message and reads its stream to `end`, as a client does. */
async function chatOnce(baseUrl: string): Promise<{ text: string; endStatus: unknown }> {
  const session = await registerUser(baseUrl, "trace");
  const conversationId = (await session.createConversation()).id;
  const accepted = await session.send(conversationId, "Tell me something long");
  const stream = await readSse(`${baseUrl}${accepted.streamUrl}`);
  expect(stream.status).toBe(200);
  return { text: textOf(stream.events), endStatus: stream.events.at(-1)?.json.status };
}

async function metricValue(metricsUrl: string, series: string): Promise<number> {
  const body = await (await fetch(metricsUrl)).text();
  const line = body.split("\n").find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? Number.NaN : Number(line.slice(series.length + 1));
}

describe("observability across processes", () => {
  it("one trace spans request, enqueue, job, provider call (first chunk) and final save; the API measures flush-to-SSE latency", async () => {
    const receiver = await startOtlpReceiver();
    const env = { ...(await sharedEnv("trace")), OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint };
    const api = await startSluiceProcess({ role: "api", env });
    const worker = await startSluiceProcess({ role: "worker", env });
    try {
      const reply = await chatOnce(api.url ?? "");
      expect(reply.endStatus).toBe("completed");
      expect(reply.text.length).toBeGreaterThan(0);
      const flushes = await metricValue(`${api.url}/metrics`, "sluice_flush_to_sse_seconds_count");
      expect(flushes).toBeGreaterThan(0);
      // Every observation is in the largest finite bucket (1 s) unless the machine is badly overloaded;
      // the sum is finite and non-negative either way.
      expect(await metricValue(`${api.url}/metrics`, "sluice_flush_to_sse_seconds_sum")).toBeGreaterThanOrEqual(0);
    } finally {
      // Shutdown flushes the batch span processors: after this the receiver has everything.
      await Promise.all([api.stop(), worker.stop()]);
      await receiver.close();
    }
    const spans = receiver.spans;
    const request = spans.find((span) => span.name === "POST /api/conversations/:id/messages");
    expect(request, `spans: ${spans.map((span) => span.name).join(", ")}`).toBeDefined();
    const trace = spans.filter((span) => span.traceId === request?.traceId);
    const one = (name: string) => {
      const matching = trace.filter((span) => span.name === name);
      expect(matching, name).toHaveLength(1);
      return matching[0];
    };
    const enqueue = one("enqueue");
    const job = one("job");
    const provider = one("provider call");
    const save = one("final save");
    expect(request?.service).toBe("sluice-api");
    expect(request?.attributes["http.response.status_code"]).toBe(202);
    expect(enqueue?.service).toBe("sluice-api");
    expect(enqueue?.parentSpanId).toBe(request?.spanId);
    expect([job?.service, provider?.service, save?.service]).toEqual(["sluice-worker", "sluice-worker", "sluice-worker"]);
    expect(job?.parentSpanId).toBe(enqueue?.spanId);
    expect(provider?.parentSpanId).toBe(job?.spanId);
    expect(provider?.events).toEqual(["first chunk"]);
    expect(save?.parentSpanId).toBe(job?.spanId);
    expect(save?.attributes["sluice.status"]).toBe("completed");
    // Spans are named by route, never by URL with ids; no span per chunk.
    expect(spans.some((span) => span.name === "GET /api/stream/:taskId")).toBe(true);
    expect(spans.every((span) => !/[0-9a-f]{8}-[0-9a-f]{4}-/.test(span.name))).toBe(true);
    expect(spans.length).toBeLessThan(30);
  }, 90_000);

  it("with tracing off no OpenTelemetry SDK module is loaded, only the no-op API", async () => {
    const modulesFile = join(scratch, "modules.json");
    const env = {
      ...(await sharedEnv("untraced")),
      NODE_OPTIONS: `--import=${join(import.meta.dirname, "record-modules.ts")}`,
      SLUICE_TEST_MODULES_FILE: modulesFile,
    };
    const sluice = await startSluiceProcess({ role: "start", env });
    try {
      const reply = await chatOnce(sluice.url ?? "");
      expect(reply.endStatus).toBe("completed");
    } finally {
      await sluice.stop();
    }
    const loaded = JSON.parse(await readFile(modulesFile, "utf8")) as string[];
    expect(loaded).toEqual(["@opentelemetry/api"]);
  }, 60_000);
});
