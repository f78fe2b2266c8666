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
 * `stopAfter` says so, or the abort signal fires. A spec-following parser:
 * lines split on \n, \r\n or \r; `data:` lines joined; comments ignored.
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
  const decoder = new TextDecoder();
  let buffer = "";
  let fields: { id?: string; event?: string; data: string[] } = { data: [] };
  try {
    for await (const chunk of response.body) {
      buffer += decoder.decode(chunk, { stream: true });
      const lines = buffer.split(/\r\n|\r|\n/);
      buffer = lines.pop() ?? "";
      for (const line of lines) {
        if (line === "") {
          if (fields.data.length > 0) {
            const data = fields.data.join("\n");
            const event: SseEvent = { id: fields.id, event: fields.event ?? "message", data, json: JSON.parse(data) as SseEvent["json"] };
            result.events.push(event);
            if (options.stopAfter?.(event, result.events)) {
              controller.abort();
              return result;
            }
          }
          fields = { data: [] };
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const name = colon === -1 ? line : line.slice(0, colon);
        const value = colon === -1 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (name === "data") fields.data.push(value);
        else if (name === "id") fields.id = value;
        else if (name === "event") fields.event = value;
        else if (name === "retry") result.retries.push(Number(value));
      }
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
