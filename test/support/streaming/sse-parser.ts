/**
 * A client-side SSE parser following the WHATWG "event stream interpretation"
 * rules (CRLF, CR or LF line ends; comments; id/event/data/retry fields), so the
 * conformance tests read the stream the way a browser's EventSource would.
 */
export interface ParsedSseEvent {
  id: string | undefined;
  event: string;
  data: string;
}

export interface SseParser {
  push(chunk: string): void;
  readonly events: ParsedSseEvent[];
  readonly comments: string[];
  readonly retries: number[];
  /** The last id received, as EventSource's lastEventId. */
  readonly lastEventId: string;
}

export function createSseParser(onEvent?: (event: ParsedSseEvent) => void): SseParser {
  const events: ParsedSseEvent[] = [];
  const comments: string[] = [];
  const retries: number[] = [];
  let buffer = "";
  let data: string[] = [];
  let eventType = "";
  let id: string | undefined;
  let lastEventId = "";
  let sawId = false;

  const dispatch = (): void => {
    if (sawId) lastEventId = id ?? "";
    if (data.length > 0) {
      const parsed = { id: sawId ? id : undefined, event: eventType || "message", data: data.join("\n") };
      events.push(parsed);
      onEvent?.(parsed);
    }
    data = [];
    eventType = "";
    sawId = false;
  };

  const line = (text: string): void => {
    if (text === "") return dispatch();
    if (text.startsWith(":")) {
      comments.push(text.slice(1).trimStart());
      return;
    }
    const colon = text.indexOf(":");
    const field = colon === -1 ? text : text.slice(0, colon);
    let value = colon === -1 ? "" : text.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") data.push(value);
    else if (field === "event") eventType = value;
    else if (field === "id" && !value.includes("\0")) {
      id = value;
      sawId = true;
    } else if (field === "retry" && /^[0-9]+$/.test(value)) retries.push(Number(value));
  };

  return {
    push(chunk) {
      buffer += chunk;
      for (;;) {
        const match = /\r\n|\r|\n/.exec(buffer);
        // A lone CR at the end may be the first half of CRLF: wait for more.
        if (!match || (match[0] === "\r" && match.index === buffer.length - 1)) break;
        line(buffer.slice(0, match.index));
        buffer = buffer.slice(match.index + match[0].length);
      }
    },
    events,
    comments,
    retries,
    get lastEventId() {
      return lastEventId;
    },
  };
}
