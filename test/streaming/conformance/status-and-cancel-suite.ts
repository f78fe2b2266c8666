import { describe, expect, it } from "vitest";
import { getJson, openSse, type SseConnection } from "../../support/streaming/http-sse-client.ts";
import type { ConformanceTarget, StreamEndpoint } from "./conformance-target.ts";
import { answerOf, connect, dataOf, expectError, expectWellFormed, getAsOwner, postCancel, streamUrl, tokenUrl } from "./protocol-client.ts";

/** A task id the server never issued, of the same shape as a real one (its last character changed). */
const unknownTaskId = (stream: StreamEndpoint): string => `${stream.taskId.slice(0, -1)}${stream.taskId.endsWith("A") ? "B" : "A"}`;

/** PROTOCOL.md 2.3 (status codes), 6 (the open-streams limit) and 7 (cancelling), against `target()`. */
export function describeStatusAndCancel(target: () => ConformanceTarget): void {
  describe("PROTOCOL.md 2.3: status codes", () => {
    it("400 INVALID_CURSOR for a cursor that cannot be one", async () => {
      const stream = await target().createStream();
      for (const headers of [{ "Last-Event-ID": "garbage" }, { "Last-Event-ID": "a-1-2" }]) {
        const response = await getAsOwner(stream, headers);
        expect(response.status).toBe(400);
        expect(response.body).toMatchObject({ error: { code: "INVALID_CURSOR" } });
        expect(typeof (response.body as { error: { message: unknown } }).error.message).toBe("string");
      }
      expect((await getAsOwner(stream, {}, "?lastEventId=%00")).status).toBe(400);
    });

    it("401 without a token, 404 for an unknown stream", async () => {
      const stream = await target().createStream();
      expect(await getJson(streamUrl(stream))).toMatchObject({ status: 401, body: { error: { code: "UNAUTHENTICATED" } } });
      expect(await getJson(streamUrl({ baseUrl: stream.baseUrl, taskId: "nosuchtask" }), stream.authHeaders)).toMatchObject({ status: 404, body: { error: { code: "STREAM_NOT_FOUND" } } });
    });

    it("404 for an unknown stream of a real id's shape, and for another user's stream", async () => {
      const stream = await target().createStream();
      await stream.begin();
      expectError(await getJson(streamUrl({ baseUrl: stream.baseUrl, taskId: unknownTaskId(stream) }), stream.authHeaders), 404, "STREAM_NOT_FOUND");
      expectError(await answerOf(streamUrl(stream), stream.strangerHeaders), 404, "STREAM_NOT_FOUND");
    });

    it("401 for a read token of another stream, or a broken one", async () => {
      const [stream, other] = await Promise.all([target().createStream(), target().createStream()]);
      await stream.begin();
      expectError(await answerOf(streamUrl(stream, `?token=${encodeURIComponent(other.readToken)}`)), 401, "UNAUTHENTICATED");
      expectError(await answerOf(streamUrl(stream, `?token=${encodeURIComponent(`${stream.readToken}x`)}`)), 401, "UNAUTHENTICATED");
    });

    it("410 STREAM_EXPIRED once a finished stream's log has expired", async () => {
      const stream = await target().createStream();
      await stream.begin();
      await stream.end({ status: "completed", messageId: "m" });
      await stream.expireLog();
      expect(await getAsOwner(stream)).toMatchObject({ status: 410, body: { error: { code: "STREAM_EXPIRED" } } });
    });

    it("410 STREAM_EXPIRED with the read token too", async () => {
      const stream = await target().createStream();
      await stream.begin();
      await stream.end({ status: "completed" });
      await stream.expireLog();
      expectError(await getJson(tokenUrl(stream)), 410, "STREAM_EXPIRED");
    });

    it("200 and waits for a queued generation that has not started yet", async () => {
      const stream = await target().createStream();
      const connection = await connect(stream);
      expect(connection.status).toBe(200);
      await stream.begin();
      await stream.end({ status: "cancelled" });
      await connection.closed;
      expect(connection.parser.events.map((event) => event.event)).toEqual(["start", "end"]);
      expect(dataOf(connection.parser.events[1])).toEqual({ type: "end", status: "cancelled" });
    });

    it("200 and waits for a queued generation with the read token too", async () => {
      const stream = await target().createStream();
      const connection = await openSse(tokenUrl(stream));
      expect(connection.status).toBe(200);
      await stream.begin();
      await stream.text("late");
      await stream.end({ status: "completed" });
      await connection.closed;
      expect(connection.parser.events.map((event) => event.event)).toEqual(["start", "text-delta", "end"]);
    });
  });

  describe("PROTOCOL.md 6: open streams per user", () => {
    it("429 TOO_MANY_OPEN_STREAMS past the limit, by header or read token; a closed stream frees its place", async () => {
      const stream = await target().createStream();
      await stream.begin();
      const open: SseConnection[] = [];
      try {
        for (let index = 0; index < target().openStreamsPerUser; index += 1) {
          const connection = await connect(stream);
          expect(connection.status).toBe(200);
          open.push(connection);
        }
        expectError(await answerOf(streamUrl(stream), stream.authHeaders), 429, "TOO_MANY_OPEN_STREAMS");
        expectError(await answerOf(tokenUrl(stream)), 429, "TOO_MANY_OPEN_STREAMS");
        // The open ones are untouched by the refusals.
        await stream.text("still here");
        for (const connection of open) expect(dataOf((await connection.waitForEvents(2))[1])).toEqual({ type: "text-delta", delta: "still here" });
        open.shift()?.abort();
        await expect.poll(async () => (await answerOf(streamUrl(stream), stream.authHeaders)).status, { timeout: 5_000 }).toBe(200);
      } finally {
        for (const connection of open) connection.abort();
      }
    });
  });

  describe("PROTOCOL.md 7: cancelling", () => {
    it("202, then the running generation ends with status cancelled, once; its log keeps that end", async () => {
      const generation = await target().startGeneration();
      const connection = await connect(generation);
      expect(connection.status).toBe(200);
      const [start, firstText] = await connection.waitForEvents(2, 20_000);
      expect(start?.event).toBe("start");
      expect(firstText?.event).toBe("text-delta");
      const cancelled = await postCancel(generation, generation.authHeaders);
      expect(cancelled.status).toBe(202);
      await connection.closed;
      const events = connection.parser.events;
      expectWellFormed(events);
      expect(events.filter((event) => event.event === "end")).toHaveLength(1);
      expect(events.at(-1)?.event).toBe("end");
      expect(dataOf(events.at(-1))).toMatchObject({ type: "end", status: "cancelled" });
      // Cancelling again after the end is not an error and changes nothing.
      expect((await postCancel(generation, generation.authHeaders)).status).toBe(202);
      const replay = await connect(generation);
      await replay.closed;
      expect(replay.parser.events.map((event) => [event.id, event.data])).toEqual(events.map((event) => [event.id, event.data]));
    }, 60_000);

    it("202 for a stream that already ended, which keeps its one end", async () => {
      const stream = await target().createStream();
      await stream.begin();
      await stream.text("finished");
      await stream.end({ status: "completed", messageId: "m-1" });
      expect((await postCancel(stream, stream.authHeaders)).status).toBe(202);
      const connection = await connect(stream);
      await connection.closed;
      expect(connection.parser.events.map((event) => event.event)).toEqual(["start", "text-delta", "end"]);
      expect(dataOf(connection.parser.events.at(-1))).toEqual({ type: "end", status: "completed", messageId: "m-1" });
    });

    it("404 STREAM_NOT_FOUND for an unknown or another user's stream, 401 without a token", async () => {
      const stream = await target().createStream();
      await stream.begin();
      expectError(await postCancel({ baseUrl: stream.baseUrl, taskId: "nosuchtask" }, stream.authHeaders), 404, "STREAM_NOT_FOUND");
      expectError(await postCancel({ baseUrl: stream.baseUrl, taskId: unknownTaskId(stream) }, stream.authHeaders), 404, "STREAM_NOT_FOUND");
      expectError(await postCancel(stream, stream.strangerHeaders), 404, "STREAM_NOT_FOUND");
      expectError(await postCancel(stream, {}), 401, "UNAUTHENTICATED");
    });
  });
}
