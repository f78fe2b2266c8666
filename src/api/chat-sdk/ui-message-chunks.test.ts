import { readUIMessageStream, uiMessageChunkSchema, type UIMessage, type UIMessageChunk } from "ai";
import { describe, expect, it } from "vitest";
import type { LogEntry, StreamEvent } from "../../streaming/events.ts";
import { createUiMessageChunkMapper, encodeUiMessageChunks, type UiMessageChunk } from "./ui-message-chunks.ts";

const identity = { messageId: "9a8e3b7c-5d0f-4c1e-8f7a-2b6d4e1c0a93", conversationId: "c", taskId: "task_x" };
const log = (...events: StreamEvent[]): LogEntry[] => events.map((event, index) => ({ seq: index + 1, event }));

/** What the AI SDK itself builds from the chunks (the same code useChat runs). */
async function rebuild(chunks: readonly UiMessageChunk[]): Promise<UIMessage | undefined> {
  const schema = uiMessageChunkSchema();
  for (const chunk of chunks) expect((await schema.validate?.(chunk))?.success, JSON.stringify(chunk)).toBe(true);
  const stream = new ReadableStream<UIMessageChunk>({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(chunk as UIMessageChunk);
      controller.close();
    },
  });
  let message: UIMessage | undefined;
  for await (const snapshot of readUIMessageStream({ stream, onError: () => undefined })) message = snapshot;
  return message;
}

describe("the log as a UI message stream", () => {
  it("gives the same chunks for the same log however it is split, and [DONE] once after the last", () => {
    const entries = log({ type: "start", attempt: 1, model: "m" }, { type: "text-delta", delta: "Hel" }, { type: "text-delta", delta: "lo" }, { type: "usage", inputTokens: 3, outputTokens: 2 }, { type: "end", status: "completed", messageId: identity.messageId });
    const whole = createUiMessageChunkMapper(identity);
    const wholeChunks = whole.push(entries);
    const split = createUiMessageChunkMapper(identity);
    const splitChunks = entries.flatMap((entry) => split.push([entry]));
    expect(splitChunks).toEqual(wholeChunks);
    expect(whole.finished).toBe(true);
    expect(wholeChunks.map((chunk) => chunk.type)).toEqual(["start", "start-step", "text-start", "text-delta", "text-delta", "text-end", "finish-step", "finish"]);
    expect(wholeChunks.at(-1)).toEqual({ type: "finish", finishReason: "stop", messageMetadata: { status: "completed", usage: { inputTokens: 3, outputTokens: 2 } } });
    const text = encodeUiMessageChunks(wholeChunks, true);
    expect(text.match(/data: \[DONE\]/g)).toHaveLength(1);
    expect(text.endsWith("data: [DONE]\n\n")).toBe(true);
    expect(whole.push(log({ type: "text-delta", delta: "late" }))).toEqual([]);
  });

  it("drops an abandoned attempt's parts on reset, so the SDK's message is the new attempt's text and reasoning only", async () => {
    const chunks = createUiMessageChunkMapper(identity).push(
      log(
        { type: "start", attempt: 1 },
        { type: "reasoning-delta", delta: "thinking once" },
        { type: "text-delta", delta: "first try" },
        { type: "reset", attempt: 2, reason: "retry" },
        { type: "reasoning-delta", delta: "thinking twice" },
        { type: "text-delta", delta: "second " },
        { type: "text-delta", delta: "try\nwith a newline" },
        { type: "end", status: "completed" },
      ),
    );
    const message = await rebuild(chunks);
    expect(message?.id).toBe(identity.messageId);
    expect(message?.metadata).toEqual({ conversationId: "c", taskId: "task_x", status: "completed" });
    expect(message?.parts.filter((part) => part.type !== "step-start").map((part) => ({ type: part.type, text: "text" in part ? part.text : undefined, state: "state" in part ? part.state : undefined }))).toEqual([
      { type: "reasoning", text: "thinking twice", state: "done" },
      { type: "text", text: "second try\nwith a newline", state: "done" },
    ]);
  });

  it("goes on through a `continue` (a crashed reply continued): the same text part, the whole reply once", async () => {
    const chunks = createUiMessageChunkMapper(identity).push(
      log({ type: "start", attempt: 1 }, { type: "text-delta", delta: "Hel" }, { type: "continue", attempt: 2 }, { type: "text-delta", delta: "lo" }, { type: "end", status: "completed" }),
    );
    expect(chunks.map((chunk) => chunk.type)).not.toContain("reset-step");
    const message = await rebuild(chunks);
    expect(message?.parts.filter((part) => part.type === "text").map((part) => (part as { text: string }).text)).toEqual(["Hello"]);
  });

  it("ends a failed generation with an error chunk carrying the catalog code, and a cancelled one with abort and finish", async () => {
    const failed = createUiMessageChunkMapper(identity).push(log({ type: "start", attempt: 1 }, { type: "text-delta", delta: "par" }, { type: "end", status: "failed", error: { code: "PROVIDER_TIMEOUT", message: "The provider sent nothing for too long." } }));
    expect(failed.at(-1)).toEqual({ type: "error", errorText: "PROVIDER_TIMEOUT: The provider sent nothing for too long." });
    await rebuild(failed);
    const cancelled = createUiMessageChunkMapper(identity).push(log({ type: "start", attempt: 1 }, { type: "text-delta", delta: "par" }, { type: "end", status: "cancelled" }));
    expect(cancelled.slice(-2).map((chunk) => chunk.type)).toEqual(["abort", "finish"]);
    const message = await rebuild(cancelled);
    expect(message?.parts.at(-1)).toMatchObject({ type: "text", text: "par", state: "done" });
  });

  it("ends a stream that was ended before it started (a deleted conversation) with start and finish", () => {
    const chunks = createUiMessageChunkMapper(identity).push(log({ type: "end", status: "cancelled", error: { code: "CONVERSATION_DELETED", message: "gone" } }));
    expect(chunks.map((chunk) => chunk.type)).toEqual(["start", "start-step", "finish-step", "abort", "finish"]);
  });
});
