import type { ViewerSink } from "../../../src/streaming/stream-hub.ts";
import { createSseParser, type ParsedSseEvent, type SseParser } from "./sse-parser.ts";
import { parseCursor } from "../client/read-sse.ts";

export interface MemoryViewer {
  sink: ViewerSink;
  parser: SseParser;
  writes: string[];
  readonly ended: boolean;
  /** While full, `write` reports a full buffer (the data is still kept, as a socket would). */
  full: boolean;
}

export function createMemoryViewer(): MemoryViewer {
  const parser = createSseParser();
  const writes: string[] = [];
  let ended = false;
  const viewer: MemoryViewer = {
    sink: {
      write(text) {
        if (ended) throw new Error("write after end");
        writes.push(text);
        parser.push(text);
        return !viewer.full;
      },
      end(text) {
        if (ended) throw new Error("end twice");
        if (text !== undefined) {
          writes.push(text);
          parser.push(text);
        }
        ended = true;
      },
    },
    parser,
    writes,
    get ended() {
      return ended;
    },
    full: false,
  };
  return viewer;
}

export interface ClientView {
  /** The message text as PROTOCOL.md 3.2 tells a client to build it (resets discard). */
  text: string;
  types: string[];
  seqs: number[];
  ends: number;
}

/** Applies the client algorithm of PROTOCOL.md 3.2 to received events. */
export function interpret(events: readonly ParsedSseEvent[]): ClientView {
  let text = "";
  let ends = 0;
  const types: string[] = [];
  const seqs: number[] = [];
  for (const event of events) {
    const data = JSON.parse(event.data) as { type: string; delta?: string };
    if (data.type !== event.event) throw new Error(`event ${event.event} carries type ${data.type}`);
    types.push(data.type);
    seqs.push(parseCursor(event.id ?? "")?.seq ?? Number.NaN);
    if (data.type === "reset") text = "";
    if (data.type === "text-delta") text += data.delta ?? "";
    if (data.type === "end") ends += 1;
  }
  return { text, types, seqs, ends };
}
