/**
 * Stream events: the discriminated union on `type` that a generation writes to
 * its log and that clients receive as SSE (PROTOCOL.md section 3).
 */

export type EndStatus = "completed" | "cancelled" | "failed";

/** Why clients must discard what they received: a new attempt, or a log that was lost and recreated (PROTOCOL.md 4.3). */
export type ResetReason = "retry" | "log-replaced";

export interface StreamErrorInfo {
  code: string;
  message: string;
}

export interface StartEvent {
  type: "start";
  attempt: number;
  model?: string;
}

export interface ResetEvent {
  type: "reset";
  attempt: number;
  reason: ResetReason;
  model?: string;
}

/**
 * A new attempt that continues the reply already in the log instead of restarting it
 * (PROTOCOL.md 4.3): clients keep everything they have; what follows is appended.
 */
export interface ContinueEvent {
  type: "continue";
  attempt: number;
  model?: string;
}

export interface TextDeltaEvent {
  type: "text-delta";
  delta: string;
}

export interface ReasoningDeltaEvent {
  type: "reasoning-delta";
  delta: string;
}

export interface UsageEvent {
  type: "usage";
  inputTokens: number;
  outputTokens: number;
}

export interface EndEvent {
  type: "end";
  status: EndStatus;
  error?: StreamErrorInfo;
  messageId?: string;
}

export type StreamEvent = StartEvent | ResetEvent | ContinueEvent | TextDeltaEvent | ReasoningDeltaEvent | UsageEvent | EndEvent;
export type StreamEventType = StreamEvent["type"];

/** Events a worker appends between `beginAttempt` and `end`; the log writes start, reset, continue and end itself. */
export type ContentEvent = TextDeltaEvent | ReasoningDeltaEvent | UsageEvent;

/** One entry of the log: its sequence number (from 1, no holes) and its event. */
export interface LogEntry {
  seq: number;
  event: StreamEvent;
}

export interface EndOutcome {
  status: EndStatus;
  error?: StreamErrorInfo;
  messageId?: string;
}

// A type becomes the SSE `event:` field verbatim, so it must not carry framing characters.
const eventTypePattern = /^[a-z][a-z0-9-]{0,63}$/;

/**
 * Parses one event's JSON as stored in the log. Unknown types pass through (the
 * protocol tells clients to ignore them), but the shape must be an object with
 * a safe `type`; anything else is reported as undefined.
 */
export function parseStreamEvent(json: string): StreamEvent | undefined {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const type = (value as { type?: unknown }).type;
  if (typeof type !== "string" || !eventTypePattern.test(type)) return undefined;
  return value as StreamEvent;
}

export function endEvent(outcome: EndOutcome): EndEvent {
  const event: EndEvent = { type: "end", status: outcome.status };
  if (outcome.error !== undefined) event.error = { code: outcome.error.code, message: outcome.error.message };
  if (outcome.messageId !== undefined) event.messageId = outcome.messageId;
  return event;
}
