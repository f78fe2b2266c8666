import type { StreamEvent } from "./events.ts";

/**
 * One SSE frame: `id`, `event`, a single `data` line and the blank line
 * (PROTOCOL.md 2.2). JSON.stringify escapes every control character, so text
 * inside an event (newlines, `\r`, NUL, "data:" or "id:" lines) stays data and
 * cannot forge a frame. The event type was validated when parsed or comes from
 * the union, and the cursor is ours.
 */
export function encodeSseEvent(cursor: string | undefined, event: StreamEvent): string {
  const id = cursor === undefined ? "" : `id: ${cursor}\n`;
  return `${id}event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`;
}

/** A comment line, ignored by clients: used for heartbeats. */
export function encodeSseComment(text: string): string {
  return `: ${text.replace(/[\r\n]/g, " ")}\n\n`;
}

/** Sets the client's reconnection delay (ms). */
export function encodeSseRetry(retryMs: number): string {
  return `retry: ${Math.max(0, Math.round(retryMs))}\n\n`;
}
