import { EventSourceParserStream } from "eventsource-parser/stream";
import type { EventSourceMessage } from "eventsource-parser";
import { ApiError, NETWORK_ERROR } from "./api-error.ts";

/** What is left of a POST's stream after its `accepted` event: the generation's log, as `GET streamUrl` serves it. */
export interface TurnEvents {
  /** The next event; `done` when the server closed the stream. Rejects when the connection broke. */
  read(): Promise<ReadableStreamReadResult<EventSourceMessage>>;
  /** Stops reading and closes the connection. */
  cancel(): void;
  /** The reconnection delay the server asked for (its jittered `retry:`), once the stream sent it. */
  retryMs(): number | undefined;
  /** When the last bytes arrived (Date.now()), heartbeat comments included: a silent connection is dead. */
  lastActivityMs(): number;
}

/** A turn the server accepted, with its stream when the server answered with one (PROTOCOL.md 2.4). */
export interface StartedTurn<T> {
  accepted: T;
  /** Null when the answer was the plain 202 (no open-stream slot free): open `streamUrl` instead. */
  events: TurnEvents | null;
}

/** The Accept of a POST that starts a generation: its stream, or the 202 JSON when the server cannot stream it. */
export const turnAccept = "text/event-stream, application/json;q=0.9";

export function isEventStream(response: Response): boolean {
  return (response.headers.get("content-type") ?? "").toLowerCase().startsWith("text/event-stream");
}

/**
 * Reads a 200 event-stream answer up to its `accepted` event, whose data is the 202's body, and
 * hands back the rest of the stream. A stream that breaks or ends before `accepted` is a network
 * error, as a lost 202 would be: the turn may have been accepted, and a reload shows it.
 */
export async function readStartedTurn<T>(response: Response): Promise<StartedTurn<T>> {
  if (response.body === null) throw new ApiError(NETWORK_ERROR, "The server's stream had no body.", 0);
  let retryMs: number | undefined;
  let lastActivityMs = Date.now();
  const activity = new TransformStream<Uint8Array<ArrayBuffer>, Uint8Array<ArrayBuffer>>({
    transform: (chunk, controller) => {
      lastActivityMs = Date.now();
      controller.enqueue(chunk);
    },
  });
  const parser = new EventSourceParserStream({ onRetry: (value) => void (retryMs = value) });
  const reader = response.body.pipeThrough(activity).pipeThrough(new TextDecoderStream()).pipeThrough(parser).getReader();
  const events: TurnEvents = {
    read: () => reader.read(),
    cancel: () => void reader.cancel().catch(() => undefined),
    retryMs: () => retryMs,
    lastActivityMs: () => lastActivityMs,
  };
  let first: ReadableStreamReadResult<EventSourceMessage>;
  try {
    first = await reader.read();
  } catch {
    throw new ApiError(NETWORK_ERROR, "The connection broke before the server answered.", 0);
  }
  const accepted = first.done || first.value.event !== "accepted" ? undefined : parseAccepted(first.value.data);
  if (accepted === undefined) {
    // Unreadable: the turn may still have been accepted, so this is the lost 202's error, and the
    // connection is closed (it holds one of the user's open-stream slots).
    events.cancel();
    throw new ApiError(NETWORK_ERROR, "The server's stream did not begin with a readable `accepted` event.", 0);
  }
  return { accepted: accepted as T, events };
}

/** The 202's body out of the `accepted` event, or undefined when it is not one. */
function parseAccepted(data: string): Record<string, unknown> | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(data);
  } catch {
    return undefined;
  }
  if (typeof parsed !== "object" || parsed === null) return undefined;
  const { type: _type, ...accepted } = parsed as Record<string, unknown>;
  const readable = typeof accepted.taskId === "string" && typeof accepted.streamUrl === "string" && typeof accepted.assistantMessage === "object" && accepted.assistantMessage !== null;
  return readable ? accepted : undefined;
}
