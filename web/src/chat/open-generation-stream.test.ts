import type { EventSourceMessage } from "eventsource-parser";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { TurnEvents } from "../api/turn-stream.ts";
import type { StreamEvent } from "./live-reply.ts";
import { openGenerationStream } from "./open-generation-stream.ts";

/** The POST's stream: hands out `messages`, then ends (`closed`) or breaks (`broken`). */
function turnEvents(messages: EventSourceMessage[], last: "closed" | "broken", retryMs?: number): TurnEvents & { cancelled: boolean } {
  const queue = [...messages];
  const lastActivityMs = Date.now();
  const events = {
    cancelled: false,
    read: () => {
      const next = queue.shift();
      if (next !== undefined) return Promise.resolve({ done: false as const, value: next });
      return last === "closed" ? Promise.resolve({ done: true as const, value: undefined }) : Promise.reject(new TypeError("network error"));
    },
    cancel: () => {
      events.cancelled = true;
    },
    retryMs: () => retryMs,
    lastActivityMs: () => lastActivityMs,
  };
  return events;
}

const message = (event: string, id: string, data = "{}"): EventSourceMessage => ({ event, id, data });

function open(initialEvents: TurnEvents) {
  const seen: StreamEvent[] = [];
  const opened: string[] = [];
  const finished = vi.fn();
  let cursor: string | null = null;
  const stream = openGenerationStream({
    streamUrl: "/api/stream/t1?token=r",
    lastEventId: null,
    initialEvents,
    onEvent: (event) => {
      seen.push(event);
      cursor = event.id;
    },
    onConnectionChange: () => undefined,
    refreshStreamUrl: () => Promise.resolve("/api/stream/t1?token=fresh"),
    onFinished: finished,
    currentCursor: () => cursor,
    onRestartFromBeginning: () => undefined,
    createEventSource: (url) => {
      opened.push(url);
      return { close: () => undefined, addEventListener: () => undefined } as unknown as EventSource;
    },
  });
  return { seen, opened, finished, stream };
}

describe("the generation stream, started from the POST's own stream", () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.stubGlobal("window", { location: { origin: "http://127.0.0.1" }, addEventListener: () => undefined, removeEventListener: () => undefined });
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.unstubAllGlobals();
  });

  it("reads it to `end` and opens no EventSource", async () => {
    const events = turnEvents([message("start", "1-1"), message("text-delta", "1-2", '{"text":"Hi"}'), message("end", "1-3", '{"status":"completed"}')], "broken");
    const { seen, opened, finished } = open(events);
    await vi.runAllTimersAsync();
    expect(seen.map((event) => [event.type, event.id])).toEqual([["start", "1-1"], ["text-delta", "1-2"], ["end", "1-3"]]);
    expect(seen[1]?.data).toEqual({ text: "Hi" });
    expect(finished).toHaveBeenCalledOnce();
    expect(opened).toEqual([]);
  });

  it("resumes by `streamUrl` at the cursor when the POST's stream breaks before `end`, after closing it", async () => {
    const events = turnEvents([message("start", "1-1"), message("text-delta", "1-2")], "broken");
    const { seen, opened, finished } = open(events);
    await vi.runAllTimersAsync();
    expect(seen.map((event) => event.id)).toEqual(["1-1", "1-2"]);
    expect(opened).toEqual(["/api/stream/t1?token=r&lastEventId=1-2"]);
    expect(events.cancelled).toBe(true);
    expect(finished).not.toHaveBeenCalled();
  });

  it("waits the server's jittered `retry:` before it resumes, not less", async () => {
    const { opened } = open(turnEvents([message("start", "1-1")], "broken", 1_700));
    await vi.advanceTimersByTimeAsync(1_699);
    expect(opened).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(opened).toEqual(["/api/stream/t1?token=r&lastEventId=1-1"]);
  });

  it("moves the cursor past `continue` too (it carries no text, but has an id)", async () => {
    const { seen, opened } = open(turnEvents([message("start", "1-1"), message("continue", "1-2")], "broken"));
    await vi.runAllTimersAsync();
    expect(seen.map((event) => event.type)).toEqual(["start", "continue"]);
    expect(opened).toEqual(["/api/stream/t1?token=r&lastEventId=1-2"]);
  });

  it("resumes the same way when the server closes it without `end` (a shutting-down server)", async () => {
    const { opened } = open(turnEvents([message("start", "1-1")], "closed"));
    await vi.runAllTimersAsync();
    expect(opened).toEqual(["/api/stream/t1?token=r&lastEventId=1-1"]);
  });

  it("takes a POST stream silent for 30 s (twice the heartbeat) for dead: closes it and resumes by `streamUrl` at the cursor", async () => {
    let endRead: (() => void) | undefined;
    const silent = { cancelled: false };
    const events: TurnEvents = {
      read: (() => {
        let first = true;
        return () => {
          if (first) {
            first = false;
            return Promise.resolve({ done: false as const, value: message("start", "1-1") });
          }
          // A half-open connection: nothing comes and nothing fails, until it is cancelled.
          return new Promise((resolve) => (endRead = () => resolve({ done: true as const, value: undefined })));
        };
      })(),
      cancel: () => {
        silent.cancelled = true;
        endRead?.();
      },
      retryMs: () => undefined,
      lastActivityMs: (() => {
        const since = Date.now();
        return () => since;
      })(),
    };
    const { opened } = open(events);
    await vi.advanceTimersByTimeAsync(29_999);
    expect(silent.cancelled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(silent.cancelled).toBe(true);
    await vi.advanceTimersByTimeAsync(250);
    expect(opened).toEqual(["/api/stream/t1?token=r&lastEventId=1-1"]);
  });

  it("closing it (the conversation left) cancels the POST's stream and reconnects nothing", async () => {
    const events = turnEvents([message("start", "1-1")], "broken");
    const { stream, opened } = open(events);
    stream.close();
    await vi.runAllTimersAsync();
    expect(events.cancelled).toBe(true);
    expect(opened).toEqual([]);
  });
});
