import { parseStreamEvent, type LogEntry } from "./events.ts";

export interface Notification {
  incarnation: string;
  /** Consecutive entries, as appended by one script call. */
  entries: LogEntry[];
  /** The writer's wall clock at the flush (ms since the epoch); appends only. */
  flushedAtMs: number | undefined;
}

/**
 * Parses a notification published by the log scripts:
 * `<incarnation> <firstSeq>[ <flushedAtMs>]\n<json>\n<json>...` (see stream-log-scripts.ts).
 * Undefined when it is not one; the hub then falls back to reading the log.
 */
export function parseNotification(message: string): Notification | undefined {
  const lines = message.split("\n");
  const header = /^([A-Za-z0-9]{1,64}) ([1-9][0-9]{0,15})(?: ([0-9]{1,16}(?:\.[0-9]{1,6})?))?$/.exec(lines[0] ?? "");
  if (!header || lines.length < 2) return undefined;
  const firstSeq = Number(header[2]);
  const entries: LogEntry[] = [];
  for (let index = 1; index < lines.length; index += 1) {
    const event = parseStreamEvent(lines[index] ?? "");
    if (event === undefined) return undefined;
    entries.push({ seq: firstSeq + index - 1, event });
  }
  return { incarnation: header[1] ?? "", entries, flushedAtMs: header[3] === undefined ? undefined : Number(header[3]) };
}
