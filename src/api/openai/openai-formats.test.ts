import { describe, expect, it } from "vitest";
import type { LogEntry, StreamEvent } from "../../streaming/events.ts";
import { createChunkStream, createCompletionCollector } from "./chat-completion-format.ts";
import { createResponseEventMapper, type ResponseIdentity } from "./response-events.ts";
import { parseFrames } from "./watch-generation.ts";

const entries = (...events: StreamEvent[]): LogEntry[] => events.map((event, index) => ({ seq: index + 1, event }));
const identity = { id: "chatcmpl-task_AAAAAAAAAAAAAAAAAAAAAA", created: 1, model: "m" };
const responseIdentity: ResponseIdentity = { id: "resp_task_AAAAAAAAAAAAAAAAAAAAAA", createdAt: 1, model: "m", background: true, store: true };
const dataOf = (sse: string): unknown[] =>
  sse.split("\n\n").filter((frame) => frame.startsWith("data: ")).map((frame) => {
    const data = frame.slice("data: ".length);
    return data === "[DONE]" ? data : (JSON.parse(data) as unknown);
  });

describe("chat completion chunks from the log", () => {
  it("hide a reset before any text, and the failed end becomes an error event without [DONE]", () => {
    const stream = createChunkStream(identity, { includeUsage: false });
    const frames = dataOf(stream.push(entries({ type: "start", attempt: 1 }, { type: "reset", attempt: 2, reason: "retry" }, { type: "text-delta", delta: "Hi" }, { type: "end", status: "failed", error: { code: "PROVIDER_TIMEOUT", message: "slow" } })));
    expect(frames).toHaveLength(3);
    expect(frames[1]).toMatchObject({ choices: [{ delta: { content: "Hi" } }] });
    expect(frames[2]).toEqual({ error: { message: "slow", type: "server_error", param: null, code: "provider_timeout" } });
    expect(stream.finished).toBe(true);
  });

  it("end with an error on a reset after text, since sent text cannot be taken back", () => {
    const stream = createChunkStream(identity, { includeUsage: true });
    const frames = dataOf(stream.push(entries({ type: "start", attempt: 1 }, { type: "text-delta", delta: "Hel" }, { type: "reset", attempt: 2, reason: "retry" }, { type: "text-delta", delta: "Hello" })));
    expect(frames.at(-1)).toMatchObject({ error: { code: "generation_restarted" } });
    expect(frames.some((frame) => JSON.stringify(frame).includes("Hello"))).toBe(false);
    expect(stream.finished).toBe(true);
  });

  it("go on through a `continue` (a crashed reply continued, PROTOCOL.md 4.3): no error, the text is the whole reply once", () => {
    const continued = entries({ type: "start", attempt: 1 }, { type: "text-delta", delta: "Hel" }, { type: "continue", attempt: 2 }, { type: "text-delta", delta: "lo" }, { type: "end", status: "completed" });
    const stream = createChunkStream(identity, { includeUsage: false });
    const frames = dataOf(stream.push(continued));
    expect(frames.some((frame) => JSON.stringify(frame).includes("generation_restarted"))).toBe(false);
    expect(frames.flatMap((frame) => (frame as { choices?: Array<{ delta: { content?: string } }> }).choices ?? []).map((choice) => choice.delta.content ?? "").join("")).toBe("Hello");
    expect(frames.at(-1)).toBe("[DONE]");
    const collector = createCompletionCollector();
    collector.push(continued);
    expect(collector.text).toBe("Hello");
    const responses = createResponseEventMapper(responseIdentity).push(continued);
    expect(responses.map((event) => event.type)).not.toContain("error");
    expect(responses.at(-1)?.type).toBe("response.completed");
  });

  it("collect, without streaming, only what follows the last reset", () => {
    const collector = createCompletionCollector();
    collector.push(entries({ type: "start", attempt: 1 }, { type: "text-delta", delta: "old" }, { type: "usage", inputTokens: 1, outputTokens: 1 }, { type: "reset", attempt: 2, reason: "retry" }, { type: "text-delta", delta: "new" }, { type: "end", status: "completed" }));
    expect(collector.text).toBe("new");
    expect(collector.usage).toBeNull();
    expect(collector.end?.status).toBe("completed");
  });
});

describe("Responses events from the log", () => {
  const log = entries(
    { type: "start", attempt: 1 },
    { type: "text-delta", delta: "Hel" },
    { type: "text-delta", delta: "lo" },
    { type: "usage", inputTokens: 3, outputTokens: 2 },
    { type: "end", status: "completed" },
  );

  it("are the same, with the same sequence numbers, however the log is split into deliveries", () => {
    const whole = createResponseEventMapper(responseIdentity).push(log);
    const mapper = createResponseEventMapper(responseIdentity);
    const pieces = log.flatMap((entry) => mapper.push([entry]));
    expect(pieces).toEqual(whole);
    expect(whole.map((event) => event.sequence_number)).toEqual(whole.map((_event, index) => index));
    expect(whole.map((event) => event.type)).toEqual([
      "response.created",
      "response.in_progress",
      "response.output_item.added",
      "response.content_part.added",
      "response.output_text.delta",
      "response.output_text.delta",
      "response.output_text.done",
      "response.content_part.done",
      "response.output_item.done",
      "response.completed",
    ]);
    expect(whole.at(-1)).toMatchObject({ response: { status: "completed", usage: { input_tokens: 3, output_tokens: 2, total_tokens: 5 }, output: [{ content: [{ text: "Hello" }] }] } });
  });

  it("end as response.failed or response.incomplete (cancelled), and with an error on a reset after text", () => {
    const failed = createResponseEventMapper(responseIdentity).push(entries({ type: "start", attempt: 1 }, { type: "end", status: "failed", error: { code: "WORKER_LOST", message: "gone" } }));
    expect(failed.at(-1)).toMatchObject({ type: "response.failed", response: { status: "failed", error: { code: "worker_lost", message: "gone" } } });
    const cancelled = createResponseEventMapper(responseIdentity).push(entries({ type: "start", attempt: 1 }, { type: "text-delta", delta: "a" }, { type: "end", status: "cancelled" }));
    expect(cancelled.at(-1)).toMatchObject({ type: "response.incomplete", response: { status: "cancelled" } });
    const restarted = createResponseEventMapper(responseIdentity);
    expect(restarted.push(entries({ type: "start", attempt: 1 }, { type: "text-delta", delta: "a" }, { type: "reset", attempt: 2, reason: "retry" })).at(-1)).toMatchObject({ type: "error", code: "generation_restarted" });
    expect(restarted.finished).toBe(true);
  });
});

describe("parseFrames", () => {
  it("reads the hub's frames back into entries and skips comments and retry hints", () => {
    const text = 'retry: 2000\n\nid: abc-7\nevent: text-delta\ndata: {"type":"text-delta","delta":"a\\n\\nb"}\n\n: ping\n\nid: abc-8\nevent: end\ndata: {"type":"end","status":"completed"}\n\n';
    expect(parseFrames(text)).toEqual([
      { seq: 7, event: { type: "text-delta", delta: "a\n\nb" } },
      { seq: 8, event: { type: "end", status: "completed" } },
    ]);
  });
});
