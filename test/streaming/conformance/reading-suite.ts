import { describe, expect, it } from "vitest";
import { openSse } from "../../support/streaming/http-sse-client.ts";
import { interpret } from "../../support/streaming/memory-viewer.ts";
import type { ConformanceTarget } from "./conformance-target.ts";
import { connect, dataOf, expectWellFormed, getAsOwner, tokenUrl } from "./protocol-client.ts";

/** PROTOCOL.md 2.2 (the response), 4 (cursors and resume) and 4.3 (attempts), against `target()`. */
export function describeReading(target: () => ConformanceTarget): void {
  describe("PROTOCOL.md 2.2: response", () => {
    it("sends the SSE headers and a retry line with jitter first", async () => {
      const stream = await target().createStream();
      await stream.begin("model-x");
      const connection = await connect(stream);
      expect(connection.status).toBe(200);
      expect(connection.headers["content-type"]).toBe("text/event-stream; charset=utf-8");
      expect(connection.headers["cache-control"]).toBe("no-cache, no-transform");
      expect(connection.headers["x-accel-buffering"]).toBe("no");
      expect(connection.headers.connection).toBe("keep-alive");
      const [start] = await connection.waitForEvents(1);
      expect(connection.raw()).toMatch(/^retry: \d+\n\n/);
      const retry = connection.parser.retries[0] ?? 0;
      expect(retry).toBeGreaterThanOrEqual(target().retryRangeMs[0]);
      expect(retry).toBeLessThanOrEqual(target().retryRangeMs[1]);
      expect(dataOf(start)).toEqual({ type: "start", attempt: 1, model: "model-x" });
      connection.abort();
    });

    it("sends heartbeat comments while nothing happens", async () => {
      const stream = await target().createStream();
      const connection = await connect(stream);
      await expect.poll(() => connection.parser.comments.length, { timeout: Math.max(3_000, 20 * target().heartbeatMs) }).toBeGreaterThanOrEqual(2);
      expect(connection.parser.comments[0]).toBe("ping");
      expect(connection.parser.events).toHaveLength(0);
      connection.abort();
    });

    it("ends with exactly one end event, then closes the response", async () => {
      const stream = await target().createStream();
      const connection = await connect(stream);
      await stream.begin();
      await stream.text("Hello", ", world");
      await stream.end({ status: "completed", messageId: "msg-1" });
      await connection.closed;
      const events = connection.parser.events;
      expectWellFormed(events);
      expect(events.map((event) => event.event)).toEqual(["start", "text-delta", "text-delta", "end"]);
      expect(dataOf(events.at(-1))).toEqual({ type: "end", status: "completed", messageId: "msg-1" });
      expect(interpret(events).text).toBe("Hello, world");
    });

    it("carries the error of a failed generation in its end event", async () => {
      const stream = await target().createStream();
      await stream.begin();
      await stream.end({ status: "failed", error: { code: "PROVIDER_TIMEOUT", message: "The provider sent nothing for too long." } });
      const connection = await connect(stream);
      await connection.closed;
      expect(dataOf(connection.parser.events.at(-1))).toEqual({
        type: "end",
        status: "failed",
        error: { code: "PROVIDER_TIMEOUT", message: "The provider sent nothing for too long." },
      });
    });

    it("delivers text with newlines, CR, NUL and SSE field names as data, intact", async () => {
      const hostile = 'a\nb\r\nc\rd\n\ndata: {"type":"end","status":"completed"}\n\nid: x-99\nevent: end\n\0 \u2028 é 🎉 \ud83d';
      const stream = await target().createStream();
      await stream.begin();
      await stream.text(hostile, "tail");
      await stream.end({ status: "completed" });
      const connection = await connect(stream);
      await connection.closed;
      expectWellFormed(connection.parser.events);
      expect(connection.parser.events.map((event) => event.event)).toEqual(["start", "text-delta", "text-delta", "end"]);
      expect(interpret(connection.parser.events).text).toBe(`${hostile}tail`);
    });
  });

  describe("PROTOCOL.md 4: cursors and resume", () => {
    it("gives a late joiner everything from the first event, then the live ones, cursors increasing", async () => {
      const stream = await target().createStream();
      await stream.begin();
      await stream.text("one ", "two ");
      const connection = await connect(stream);
      await connection.waitForEvents(3);
      await stream.text("three");
      await stream.end({ status: "completed" });
      await connection.closed;
      const view = interpret(connection.parser.events);
      expect(view.text).toBe("one two three");
      expect(view.ends).toBe(1);
      const ids = connection.parser.events.map((event) => event.id ?? "");
      expect(new Set(ids).size).toBe(ids.length);
      expect(view.seqs).toEqual([1, 2, 3, 4, 5]);
    });

    it("resumes after the Last-Event-ID header: nothing before it, nothing twice", async () => {
      const stream = await target().createStream();
      await stream.begin();
      await stream.text("a", "b");
      const first = await connect(stream);
      const seen = await first.waitForEvents(2);
      first.abort();
      await stream.text("c");
      const second = await connect(stream, { "Last-Event-ID": seen[1]?.id ?? "" });
      await stream.end({ status: "completed" });
      await second.closed;
      expect(second.parser.events.map((event) => (dataOf(event).delta as string | undefined) ?? event.event)).toEqual(["b", "c", "end"]);
      const all = [...seen, ...second.parser.events];
      expect(interpret(all).text).toBe("abc");
    });

    it("resumes after the lastEventId query parameter, and the header wins over it", async () => {
      const stream = await target().createStream();
      await stream.begin();
      await stream.text("x", "y", "z");
      await stream.end({ status: "completed" });
      const whole = await connect(stream);
      await whole.closed;
      const ids = whole.parser.events.map((event) => event.id ?? "");
      const byQuery = await connect(stream, {}, `?lastEventId=${encodeURIComponent(ids[1] ?? "")}`);
      await byQuery.closed;
      expect(byQuery.parser.events.map((event) => event.id)).toEqual(ids.slice(2));
      const both = await connect(stream, { "Last-Event-ID": ids[3] ?? "" }, `?lastEventId=${encodeURIComponent(ids[0] ?? "")}`);
      await both.closed;
      expect(both.parser.events.map((event) => event.id)).toEqual(ids.slice(4));
    });

    it("accepts the read token in the query (EventSource)", async () => {
      const stream = await target().createStream();
      await stream.begin();
      await stream.end({ status: "completed" });
      const connection = await openSse(tokenUrl(stream));
      await connection.closed;
      expect(connection.status).toBe(200);
      expect(connection.parser.events.map((event) => event.event)).toEqual(["start", "end"]);
    });

    it("replays a completed stream, and answers 204 to the cursor of its end", async () => {
      const stream = await target().createStream();
      await stream.begin();
      await stream.text("done");
      await stream.end({ status: "completed" });
      const connection = await connect(stream);
      await connection.closed;
      expect(interpret(connection.parser.events)).toMatchObject({ text: "done", ends: 1 });
      const endId = connection.parser.events.at(-1)?.id ?? "";
      const again = await getAsOwner(stream, { "Last-Event-ID": endId });
      expect(again).toEqual({ status: 204, body: undefined });
    });

    it("gives a client of a lost log an explicit reset, then the new log from its start", async () => {
      const stream = await target().createStream();
      await stream.begin();
      await stream.text("old text");
      const before = await connect(stream);
      const seen = await before.waitForEvents(2);
      before.abort();
      await stream.loseLog();
      await stream.begin();
      await stream.text("new text");
      const after = await connect(stream, { "Last-Event-ID": seen[1]?.id ?? "" });
      const events = await after.waitForEvents(3);
      expect(events[0]?.event).toBe("reset");
      expect(dataOf(events[0])).toMatchObject({ type: "reset", reason: "log-replaced" });
      expect(events.slice(1).map((event) => event.event)).toEqual(["start", "text-delta"]);
      expect(interpret([...seen, ...events]).text).toBe("new text");
      // The reset's id is a valid cursor: resuming from it replays the new log from its start, with no second reset.
      after.abort();
      const fromReset = await connect(stream, { "Last-Event-ID": events[0]?.id ?? "" });
      const replay = await fromReset.waitForEvents(2);
      expect(replay.map((event) => event.event)).toEqual(["start", "text-delta"]);
      fromReset.abort();
    });

    it("treats a cursor past the end of the log like one of another log", async () => {
      const stream = await target().createStream();
      await stream.begin();
      await stream.end({ status: "completed" });
      const whole = await connect(stream);
      await whole.closed;
      const endId = whole.parser.events.at(-1)?.id ?? "";
      const bogus = endId.replace(/-\d+$/, "-9999");
      const connection = await connect(stream, { "Last-Event-ID": bogus });
      await connection.closed;
      expect(connection.parser.events.map((event) => event.event)).toEqual(["reset", "start", "end"]);
    });
  });

  describe("PROTOCOL.md 4.3: attempts", () => {
    it("marks a new attempt with a reset in the same stream; the client's text is the last attempt's", async () => {
      const stream = await target().createStream();
      const connection = await connect(stream);
      await stream.begin();
      await stream.text("broken ans");
      await stream.retry();
      await stream.text("good answer");
      await stream.end({ status: "completed" });
      await connection.closed;
      const events = connection.parser.events;
      expect(events.map((event) => event.event)).toEqual(["start", "text-delta", "reset", "text-delta", "end"]);
      expect(dataOf(events[2])).toEqual({ type: "reset", attempt: 2, reason: "retry" });
      expect(interpret(events)).toMatchObject({ text: "good answer", ends: 1 });
    });
  });
}
