import { trace } from "@opentelemetry/api";
import { InMemorySpanExporter } from "@opentelemetry/sdk-trace";
import { afterEach, describe, expect, it } from "vitest";
import { startTracing, type Tracing } from "./start-tracing.ts";
import { activeTraceparent, contextFromTraceparent } from "./traceparent.ts";
import { startSpan, withSpan } from "./with-span.ts";

const settings = { tracesEndpoint: undefined, serviceName: "sluice-test", sampleRatio: 1 };
let tracing: Tracing | undefined;
afterEach(async () => {
  await tracing?.shutdown();
  tracing = undefined;
});

describe("tracing facade", () => {
  it("is off without an endpoint: nothing registered, spans do not record, no traceparent leaves the process", async () => {
    tracing = await startTracing(settings);
    expect(tracing.enabled).toBe(false);
    const seen = await withSpan("request", {}, (span) => Promise.resolve({ recording: span.isRecording(), traceparent: activeTraceparent() }));
    expect(seen).toEqual({ recording: false, traceparent: undefined });
    expect(trace.getTracerProvider().getTracer("x").startSpan("y").isRecording()).toBe(false);
  });

  it("nests spans through awaits and carries the trace across a process boundary as a traceparent", async () => {
    const exporter = new InMemorySpanExporter();
    tracing = await startTracing(settings, { exporter });
    // The "API" side: a request span, an enqueue child, and the traceparent put into job data.
    const carried = await withSpan("request", {}, async () => {
      await Promise.resolve();
      return await withSpan("enqueue", {}, () => Promise.resolve(activeTraceparent()));
    });
    expect(carried).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    // The "worker" side: nothing active, the job continues the carried trace.
    await withSpan("job", { parent: contextFromTraceparent(carried) }, async () => {
      const provider = startSpan("provider call");
      provider.addEvent("first chunk");
      provider.end();
      await withSpan("final save", {}, () => Promise.resolve());
    });
    const spans = Object.fromEntries(exporter.getFinishedSpans().map((span) => [span.name, span]));
    expect(Object.keys(spans).sort()).toEqual(["enqueue", "final save", "job", "provider call", "request"]);
    const traceIds = new Set(Object.values(spans).map((span) => span.spanContext().traceId));
    expect(traceIds.size).toBe(1);
    const parentOf = (name: string) => spans[name]?.parentSpanContext?.spanId;
    expect(parentOf("request")).toBeUndefined();
    expect(parentOf("enqueue")).toBe(spans.request?.spanContext().spanId);
    expect(parentOf("job")).toBe(spans.enqueue?.spanContext().spanId);
    expect(parentOf("provider call")).toBe(spans.job?.spanContext().spanId);
    expect(parentOf("final save")).toBe(spans.job?.spanContext().spanId);
    expect(spans["provider call"]?.events.map((event) => event.name)).toEqual(["first chunk"]);
    expect(spans.request?.resource.attributes["service.name"]).toBe("sluice-test");
  });

  it("records a failure on the span and rethrows it", async () => {
    const exporter = new InMemorySpanExporter();
    tracing = await startTracing(settings, { exporter });
    await expect(withSpan("final save", {}, () => Promise.reject(new Error("database down")))).rejects.toThrow("database down");
    const [span] = exporter.getFinishedSpans();
    expect(span?.status.code).toBe(2); // SpanStatusCode.ERROR
    expect(span?.events[0]?.name).toBe("exception");
  });

  it("unregisters on shutdown, so spans stop recording", async () => {
    const exporter = new InMemorySpanExporter();
    tracing = await startTracing(settings, { exporter });
    await tracing.shutdown();
    expect(await withSpan("late", {}, (span) => Promise.resolve(span.isRecording()))).toBe(false);
  });

  it("ignores a missing or malformed traceparent: the job starts its own trace", async () => {
    tracing = await startTracing(settings, { exporter: new InMemorySpanExporter() });
    for (const value of [undefined, "", "garbage", "00-00000000000000000000000000000000-0000000000000000-01", "01-abc"]) {
      expect(trace.getSpanContext(contextFromTraceparent(value))).toBeUndefined();
    }
    const context = contextFromTraceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    expect(trace.getSpanContext(context)).toMatchObject({ traceId: "0af7651916cd43dd8448eb211c80319c", spanId: "b7ad6b7169203331", traceFlags: 1, isRemote: true });
  });
});
