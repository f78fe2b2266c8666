import { createParser } from "eventsource-parser";

/** One parsed SSE event as a client sees it. */
export interface SseEvent {
  id: string | undefined;
  event: string;
  data: string;
  /** `data` parsed as JSON. */
  json: { type: string; [key: string]: unknown };
}

export interface SseResponse {
  status: number;
  headers: Headers;
  /** Events in arrival order (empty for non-200 answers). */
  events: SseEvent[];
  /** `retry:` values seen. */
  retries: number[];
  /** The body, for error answers. */
  body: string;
}

/**
 * Reads an SSE response to its end (the server closes after `end`), or until
 * `stopAfter` says so, or the abort signal fires (eventsource-parser follows
 * the spec: \n, \r\n or \r line ends, `data:` lines joined, comments ignored).
 */
export async function readSse(
  url: string,
  options: { headers?: Record<string, string>; signal?: AbortSignal; stopAfter?: (event: SseEvent, all: SseEvent[]) => boolean } = {},
): Promise<SseResponse> {
  const controller = new AbortController();
  const onAbort = (): void => controller.abort();
  options.signal?.addEventListener("abort", onAbort);
  const response = await fetch(url, { headers: options.headers ?? {}, signal: controller.signal });
  const result: SseResponse = { status: response.status, headers: response.headers, events: [], retries: [], body: "" };
  if (response.status !== 200 || !response.body) {
    result.body = await response.text();
    options.signal?.removeEventListener("abort", onAbort);
    return result;
  }
  let stopped = false;
  const parser = createParser({
    onEvent: (message) => {
      if (stopped) return;
      const event: SseEvent = { id: message.id, event: message.event ?? "message", data: message.data, json: JSON.parse(message.data) as SseEvent["json"] };
      result.events.push(event);
      if (options.stopAfter?.(event, result.events)) {
        stopped = true;
        controller.abort();
      }
    },
    onRetry: (retry) => result.retries.push(retry),
  });
  const decoder = new TextDecoder();
  try {
    for await (const chunk of response.body) {
      parser.feed(decoder.decode(chunk, { stream: true }));
      if (stopped) return result;
    }
  } catch (error) {
    if (!controller.signal.aborted) throw error;
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
  }
  return result;
}

/** The text a client would show: text-deltas after the last `reset`. */
export function textOf(events: readonly SseEvent[]): string {
  let text = "";
  for (const event of events) {
    if (event.event === "reset") text = "";
    if (event.event === "text-delta") text += String(event.json.delta);
  }
  return text;
}
