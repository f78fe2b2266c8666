import type { LogEntry } from "../../streaming/events.ts";
import { createEntryMapper, type EntryMapper } from "../openai/entry-mapper.ts";

/**
 * The one log of a generation as the AI SDK's UI message stream (PROTOCOL.md section 12), the
 * format `useChat`'s DefaultChatTransport reads: SSE `data:` lines of JSON chunks, then
 * `data: [DONE]`. The mapping is a pure function of the log read from its first entry, so a
 * resumed stream (GET /api/chat/:id/stream) is the same chunks again, which the SDK's
 * replaying transport rebuilds into the same message, every part once.
 *
 * log `start` → `start` (messageId, messageMetadata) and `start-step`;
 * the first `text-delta` / `reasoning-delta` of an attempt → `text-start` / `reasoning-start`,
 * each → `text-delta` / `reasoning-delta`; `reset` → `reset-step` (the SDK drops the step's
 * parts, as PROTOCOL.md 4.3 asks) and new part ids; `usage` → remembered;
 * `end` → the open parts' `*-end`, `finish-step`, then `finish` (completed), `abort` and
 * `finish` (cancelled), or `error` (failed), and `[DONE]`.
 */
export interface UiMessageIdentity {
  /** Sluice's assistant message id: the UI message's id. */
  messageId: string;
  conversationId: string;
  taskId: string;
}

export type UiMessageChunk = { type: string } & Record<string, unknown>;

export const uiMessageStreamHeader = { name: "x-vercel-ai-ui-message-stream", value: "v1" } as const;

/** Maps log entries to UI message chunks in order; `finished` turns true with the last chunk. */
export function createUiMessageChunkMapper(identity: UiMessageIdentity): EntryMapper<UiMessageChunk> {
  let attempt = 1;
  let started = false;
  /** The parts of the current attempt that have a `*-start` and no `*-end` yet. */
  const open = { text: false, reasoning: false };
  let usage: { inputTokens: number; outputTokens: number } | undefined;
  let finished = false;
  const partId = (part: keyof typeof open): string => `${part}-${attempt}`;

  const begin = (model: string | undefined): UiMessageChunk[] => {
    if (started) return [];
    started = true;
    const messageMetadata = { conversationId: identity.conversationId, taskId: identity.taskId, ...(model === undefined ? {} : { model }) };
    return [{ type: "start", messageId: identity.messageId, messageMetadata }, { type: "start-step" }];
  };
  const closeParts = (): UiMessageChunk[] => {
    const chunks: UiMessageChunk[] = [];
    if (open.reasoning) chunks.push({ type: "reasoning-end", id: partId("reasoning") });
    if (open.text) chunks.push({ type: "text-end", id: partId("text") });
    open.reasoning = false;
    open.text = false;
    return chunks;
  };
  /** A delta of the text or the reasoning, the part's `*-start` before its first one. */
  const deltaChunks = (part: keyof typeof open, delta: string): UiMessageChunk[] => {
    if (delta === "") return [];
    const chunks = [...begin(undefined)];
    if (!open[part]) chunks.push({ type: `${part}-start`, id: partId(part) });
    open[part] = true;
    chunks.push({ type: `${part}-delta`, id: partId(part), delta });
    return chunks;
  };
  const pushOne = (entry: LogEntry): UiMessageChunk[] => {
    const event = entry.event;
    switch (event.type) {
      case "start":
        attempt = event.attempt;
        return begin(event.model);
      case "reset": {
        const chunks = [...begin(event.model)];
        // The parts already sent belong to an attempt that will not finish: the SDK removes them.
        if (open.text || open.reasoning) chunks.push({ type: "reset-step" });
        open.text = false;
        open.reasoning = false;
        usage = undefined;
        attempt = event.attempt;
        return chunks;
      }
      case "text-delta":
      case "reasoning-delta":
        return deltaChunks(event.type === "text-delta" ? "text" : "reasoning", event.delta);
      case "usage":
        usage = { inputTokens: event.inputTokens, outputTokens: event.outputTokens };
        return [];
      case "end": {
        finished = true;
        const chunks = [...begin(undefined), ...closeParts(), { type: "finish-step" }];
        if (event.status === "failed") {
          const code = event.error?.code ?? "INTERNAL";
          // errorText is what useChat's `error.message` shows; the code leads so a client can branch on it.
          return [...chunks, { type: "error", errorText: `${code}: ${event.error?.message ?? "The generation failed."}` }];
        }
        const messageMetadata = { status: event.status, ...(usage ? { usage } : {}) };
        if (event.status === "cancelled") chunks.push({ type: "abort", reason: event.error?.code ?? "cancelled" });
        return [...chunks, { type: "finish", finishReason: "stop", messageMetadata }];
      }
      default:
        return [];
    }
  };
  return createEntryMapper(pushOne, () => finished);
}

/** SSE text of chunks: one `data:` line each (JSON.stringify escapes newlines), `[DONE]` after the last. */
export function encodeUiMessageChunks(chunks: readonly UiMessageChunk[], finished: boolean): string {
  return chunks.map((chunk) => `data: ${JSON.stringify(chunk)}\n\n`).join("") + (finished && chunks.length > 0 ? "data: [DONE]\n\n" : "");
}
