import type { ErrorInfo, MessageStatus } from "../api/types.ts";

/**
 * The client's view of one assistant reply being streamed (PROTOCOL.md, "Events").
 *
 * Exactly-once text on the client rests on two rules:
 * 1. Every content event carries an `id` cursor; an id already applied is ignored,
 *    so a replay after a reconnect (Last-Event-ID or `lastEventId`) never doubles text.
 * 2. `reset` (a new attempt after a worker crash) discards the partial text; the
 *    new attempt's deltas rebuild it from the start.
 * A reply opened without a cursor therefore starts from empty text and is rebuilt
 * entirely from the log, never stitched onto a saved partial.
 * Reasoning (`reasoning-delta`) builds its own text by the same rules; its duration is
 * measured here, from the first reasoning delta to the answer's first (or the last
 * reasoning delta), as this client received them (the saved message has the worker's).
 */
export interface LiveReply {
  readonly messageId: string;
  readonly taskId: string;
  readonly text: string;
  /** The model's visible reasoning so far; "" when it sent none. */
  readonly reasoning: string;
  /** When the first reasoning delta arrived (ms, Date.now()); null before any. */
  readonly reasoningStartedAtMs: number | null;
  /** When the reasoning ended: the answer's first delta, else the last reasoning delta. */
  readonly reasoningEndedAtMs: number | null;
  readonly status: MessageStatus;
  readonly error: ErrorInfo | null;
  /** The last applied cursor, sent as `lastEventId` when the stream is reopened. */
  readonly lastEventId: string | null;
  readonly appliedIds: ReadonlySet<string>;
  /** True once `end` arrived; the saved message then replaces this reply. */
  readonly ended: boolean;
}

export interface StreamEvent {
  /** The SSE `event:` field. */
  readonly type: string;
  /** The SSE `id:` field; empty when the event has none. */
  readonly id: string;
  /** The parsed `data:` JSON. */
  readonly data: unknown;
  /** When it arrived (ms); Date.now() when absent. */
  readonly receivedAtMs?: number;
}

export function createLiveReply(messageId: string, taskId: string): LiveReply {
  return {
    messageId,
    taskId,
    text: "",
    reasoning: "",
    reasoningStartedAtMs: null,
    reasoningEndedAtMs: null,
    status: "pending",
    error: null,
    lastEventId: null,
    appliedIds: new Set(),
    ended: false,
  };
}

const terminalStatuses: ReadonlySet<string> = new Set(["completed", "cancelled", "failed"]);

/** Applies one SSE event; returns the same object when the event changes nothing (a duplicate). */
export function applyStreamEvent(reply: LiveReply, event: StreamEvent): LiveReply {
  if (reply.ended) return reply;
  if (event.id !== "" && reply.appliedIds.has(event.id)) return reply;
  const next = applyEventBody(reply, event);
  if (event.id === "") return next;
  const appliedIds = new Set(reply.appliedIds);
  appliedIds.add(event.id);
  return { ...next, appliedIds, lastEventId: event.id };
}

function applyEventBody(reply: LiveReply, event: StreamEvent): LiveReply {
  const data = (typeof event.data === "object" && event.data !== null ? event.data : {}) as Record<string, unknown>;
  switch (event.type) {
    case "start":
      return { ...reply, status: "streaming" };
    case "reset":
      return { ...reply, text: "", reasoning: "", reasoningStartedAtMs: null, reasoningEndedAtMs: null, status: "streaming" };
    case "text-delta": {
      const delta = typeof data.delta === "string" ? data.delta : "";
      // The answer's first delta ends the reasoning.
      const endsReasoning = reply.text === "" && delta !== "" && reply.reasoningStartedAtMs !== null;
      return { ...reply, text: reply.text + delta, status: "streaming", ...(endsReasoning ? { reasoningEndedAtMs: receivedAt(event) } : {}) };
    }
    case "reasoning-delta": {
      const delta = typeof data.delta === "string" ? data.delta : "";
      if (delta === "") return reply;
      const now = receivedAt(event);
      return {
        ...reply,
        reasoning: reply.reasoning + delta,
        status: "streaming",
        reasoningStartedAtMs: reply.reasoningStartedAtMs ?? now,
        reasoningEndedAtMs: reply.text === "" ? now : reply.reasoningEndedAtMs,
      };
    }
    case "end": {
      const status = typeof data.status === "string" && terminalStatuses.has(data.status) ? (data.status as MessageStatus) : "failed";
      return { ...reply, status, error: readError(data.error), ended: true };
    }
    default:
      // `usage` and event types added later carry no text.
      return reply;
  }
}

function receivedAt(event: StreamEvent): number {
  return event.receivedAtMs ?? Date.now();
}

/** The live reasoning's duration so far (ms), or null before any reasoning arrived. */
export function liveReasoningDurationMs(reply: LiveReply): number | null {
  if (reply.reasoningStartedAtMs === null) return null;
  return (reply.reasoningEndedAtMs ?? reply.reasoningStartedAtMs) - reply.reasoningStartedAtMs;
}

function readError(value: unknown): ErrorInfo | null {
  if (typeof value !== "object" || value === null) return null;
  const { code, message } = value as { code?: unknown; message?: unknown };
  if (typeof code !== "string") return null;
  return { code, message: typeof message === "string" ? message : code };
}
