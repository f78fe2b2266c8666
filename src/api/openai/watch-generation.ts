import type { LogEntry, StreamEvent } from "../../streaming/events.ts";
import type { StreamHub, ViewerSink, WhenLogMissingOption } from "../../streaming/index.ts";

export interface GenerationWatch {
  /** Begins the replay, then live delivery; call once the consumer can take entries. */
  start(): void;
  /** "ended" once the `end` entry was delivered; "closed" when the hub let go first (shutdown, slow reader). */
  readonly done: Promise<"ended" | "closed">;
  /** The consumer drained after `onEntries` returned false. */
  resume(): void;
  /** Releases the viewer; the generation itself runs on (it is the worker's). Idempotent. */
  close(): void;
}

/**
 * Reads one generation's log through the hub (PROTOCOL.md section 8: subscribe, replay from
 * the first entry, then live), as entries instead of SSE text: the `/v1` routes present the
 * same log in OpenAI's formats. The hub writes whole frames it encoded itself (`id`, `event`,
 * one `data` line), so they are split back here. `onEntries` returning false asks the hub to
 * wait for `resume()`, as a full socket does for Sluice's own stream.
 */
export async function watchGeneration(options: {
  hub: StreamHub;
  taskId: string;
  /** Default "wait": a call's own generation, whose log appears when a worker starts it. */
  whenMissing?: WhenLogMissingOption;
  onEntries: (entries: LogEntry[]) => boolean;
}): Promise<GenerationWatch> {
  let settle: (outcome: "ended" | "closed") => void = () => undefined;
  const done = new Promise<"ended" | "closed">((resolve) => {
    settle = resolve;
  });
  let ended = false;
  const deliver = (text: string): boolean => {
    const entries = parseFrames(text);
    if (entries.some((entry) => entry.event.type === "end")) ended = true;
    return entries.length === 0 ? true : options.onEntries(entries);
  };
  const sink: ViewerSink = {
    write: (text) => deliver(text),
    end: (text) => {
      if (text !== undefined) deliver(text);
      settle(ended ? "ended" : "closed");
    },
  };
  const opened = await options.hub.open({ taskId: options.taskId, whenMissing: options.whenMissing ?? "wait", sink });
  if (opened.status === "finished") {
    settle("ended");
    return { done, start: () => undefined, resume: () => undefined, close: () => undefined };
  }
  const { viewer } = opened;
  return {
    done,
    start: () => viewer.start(),
    resume: () => viewer.resume(),
    close: () => {
      viewer.close();
      settle(ended ? "ended" : "closed");
    },
  };
}

/** Splits hub SSE text into log entries; comments and `retry:` hints carry none. */
export function parseFrames(text: string): LogEntry[] {
  const entries: LogEntry[] = [];
  for (const frame of text.split("\n\n")) {
    let seq: number | undefined;
    let data: string | undefined;
    for (const line of frame.split("\n")) {
      if (line.startsWith("id: ")) seq = Number(line.slice(line.lastIndexOf("-") + 1));
      else if (line.startsWith("data: ")) data = line.slice("data: ".length);
    }
    if (seq === undefined || data === undefined || !Number.isSafeInteger(seq)) continue;
    entries.push({ seq, event: JSON.parse(data) as StreamEvent });
  }
  return entries;
}
