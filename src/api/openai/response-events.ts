import type { EndEvent, LogEntry } from "../../streaming/events.ts";
import { generationFailure } from "./chat-completion-format.ts";
import { createEntryMapper, type EntryMapper } from "./entry-mapper.ts";

/**
 * The one log of a generation as OpenAI Responses API events (PROTOCOL.md section 11). The
 * mapping is a pure function of the log read from its first entry, so the same log always gives
 * the same events with the same `sequence_number` (from 0): that is what makes
 * `GET /v1/responses/{id}?stream=true&starting_after=N` exact. The log is re-read from its
 * first entry and every event up to N is skipped, never re-sent.
 */
export interface ResponseIdentity {
  /** `resp_<taskId>`. */
  id: string;
  /** Unix seconds. */
  createdAt: number;
  model: string;
  background: boolean | null;
  store: boolean;
}

export type ResponseStatus = "queued" | "in_progress" | "completed" | "cancelled" | "failed";

export interface ResponseUsage {
  input_tokens: number;
  output_tokens: number;
  total_tokens: number;
  input_tokens_details: { cached_tokens: number };
  output_tokens_details: { reasoning_tokens: number };
}

export const responseIdOf = (taskId: string): string => `resp_${taskId}`;

export function taskIdOfResponse(id: string): string | undefined {
  return /^resp_(task_[A-Za-z0-9_-]{22})$/.exec(id)?.[1];
}

export function responseUsage(inputTokens: number, outputTokens: number): ResponseUsage {
  return { input_tokens: inputTokens, output_tokens: outputTokens, total_tokens: inputTokens + outputTokens, input_tokens_details: { cached_tokens: 0 }, output_tokens_details: { reasoning_tokens: 0 } };
}

/** A `response` object as POST, GET and the lifecycle events carry it. */
export function responseObject(
  identity: ResponseIdentity,
  state: { status: ResponseStatus; text: string | undefined; usage: ResponseUsage | null; error: { code: string; message: string } | null },
): Record<string, unknown> {
  const taskId = identity.id.slice("resp_".length);
  const output =
    state.text === undefined
      ? []
      : [{ id: `msg_${taskId}`, type: "message", role: "assistant", status: state.status === "in_progress" ? "in_progress" : "completed", content: [{ type: "output_text", text: state.text, annotations: [], logprobs: [] }] }];
  return {
    id: identity.id,
    object: "response",
    created_at: identity.createdAt,
    status: state.status,
    background: identity.background,
    error: state.error,
    incomplete_details: null,
    instructions: null,
    max_output_tokens: null,
    metadata: {},
    model: identity.model,
    output,
    parallel_tool_calls: false,
    previous_response_id: null,
    store: identity.store,
    temperature: null,
    text: { format: { type: "text" } },
    tool_choice: "auto",
    tools: [],
    top_p: null,
    truncation: "disabled",
    usage: state.usage,
  };
}

export interface ResponseEvent {
  sequence_number: number;
  type: string;
  [field: string]: unknown;
}

/**
 * Maps log entries to Responses events in order. `start` → `response.created` and
 * `response.in_progress`; the first text of an attempt → `response.output_item.added` and
 * `response.content_part.added`; each `text-delta` → `response.output_text.delta`; `end` →
 * the `.done` events and `response.completed` / `response.incomplete` (status `cancelled`) /
 * `response.failed`. A `reset` after text was sent cannot be taken back in this format: an
 * `error` event ends the stream (the saved reply, from `GET /v1/responses/{id}`, is the new attempt's).
 */
export function createResponseEventMapper(identity: ResponseIdentity): EntryMapper<ResponseEvent> {
  let sequence = 0;
  let started = false;
  let itemOpen = false;
  let text = "";
  let usage: ResponseUsage | null = null;
  let finished = false;
  const taskId = identity.id.slice("resp_".length);
  const itemId = `msg_${taskId}`;
  const event = (type: string, fields: Record<string, unknown>): ResponseEvent => ({ type, sequence_number: sequence++, ...fields });
  const snapshot = (status: ResponseStatus, error: { code: string; message: string } | null = null): Record<string, unknown> =>
    responseObject(identity, { status, text: itemOpen ? text : undefined, usage, error });
  const begin = (): ResponseEvent[] => {
    if (started) return [];
    started = true;
    return [event("response.created", { response: snapshot("in_progress") }), event("response.in_progress", { response: snapshot("in_progress") })];
  };
  const openItem = (): ResponseEvent[] => {
    if (itemOpen) return [];
    itemOpen = true;
    return [
      event("response.output_item.added", { output_index: 0, item: { id: itemId, type: "message", role: "assistant", status: "in_progress", content: [] } }),
      event("response.content_part.added", { item_id: itemId, output_index: 0, content_index: 0, part: { type: "output_text", text: "", annotations: [], logprobs: [] } }),
    ];
  };
  const finish = (end: EndEvent): ResponseEvent[] => {
    finished = true;
    const events = [...begin()];
    if (end.status === "failed") {
      const failure = generationFailure(end).body.error;
      return [...events, event("response.failed", { response: snapshot("failed", { code: failure.code ?? "internal", message: failure.message }) })];
    }
    events.push(...openItem());
    const part = { type: "output_text", text, annotations: [], logprobs: [] };
    events.push(
      event("response.output_text.done", { item_id: itemId, output_index: 0, content_index: 0, text, logprobs: [] }),
      event("response.content_part.done", { item_id: itemId, output_index: 0, content_index: 0, part }),
      event("response.output_item.done", { output_index: 0, item: { id: itemId, type: "message", role: "assistant", status: "completed", content: [part] } }),
    );
    if (end.status === "cancelled") return [...events, event("response.incomplete", { response: snapshot("cancelled") })];
    return [...events, event("response.completed", { response: snapshot("completed") })];
  };
  const pushOne = (entry: LogEntry): ResponseEvent[] => {
    const logEvent = entry.event;
    switch (logEvent.type) {
      case "start":
        return begin();
      case "reset":
        usage = null;
        if (!itemOpen || text === "") return [];
        finished = true;
        return [event("error", { code: "generation_restarted", message: "The generation was restarted after part of its text was sent; GET /v1/responses/{id} once it has finished.", param: null })];
      case "text-delta":
        if (logEvent.delta === "") return [];
        text += logEvent.delta;
        return [...begin(), ...openItem(), event("response.output_text.delta", { item_id: itemId, output_index: 0, content_index: 0, delta: logEvent.delta, logprobs: [] })];
      case "usage":
        usage = responseUsage(logEvent.inputTokens, logEvent.outputTokens);
        return [];
      case "end":
        return finish(logEvent);
      default:
        return [];
    }
  };
  return createEntryMapper(pushOne, () => finished);
}

/** One SSE frame of a Responses event: its type as the SSE event name, as OpenAI sends it. */
export function encodeResponseEvent(responseEvent: ResponseEvent): string {
  return `event: ${responseEvent.type}\ndata: ${JSON.stringify(responseEvent)}\n\n`;
}
