import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { applyStreamEvent, createLiveReply, type LiveReply, type StreamEvent } from "./live-reply.ts";

const start = (id: string): StreamEvent => ({ type: "start", id, data: { attempt: 1 } });
const delta = (id: string, text: string): StreamEvent => ({ type: "text-delta", id, data: { delta: text } });
const end = (id: string, status: string, error?: unknown): StreamEvent => ({ type: "end", id, data: { status, error } });

function applyAll(events: readonly StreamEvent[], reply: LiveReply = createLiveReply("m1", "t1")): LiveReply {
  return events.reduce(applyStreamEvent, reply);
}

describe("applyStreamEvent", () => {
  test("deltas build the text in order and `end` carries the final status", () => {
    const reply = applyAll([start("1"), delta("2", "Hello"), delta("3", ", world"), end("4", "completed")]);
    expect(reply.text).toBe("Hello, world");
    expect(reply.status).toBe("completed");
    expect(reply.ended).toBe(true);
    expect(reply.lastEventId).toBe("4");
  });

  test("an event whose id was already applied is ignored (replay after reconnect)", () => {
    const first = applyAll([start("1"), delta("2", "ab"), delta("3", "cd")]);
    const replayed = applyAll([delta("2", "ab"), delta("3", "cd"), delta("4", "ef")], first);
    expect(replayed.text).toBe("abcdef");
  });

  test("`reset` discards the partial text of the superseded attempt", () => {
    const reply = applyAll([
      start("1"),
      delta("2", "partial from a crashed worker"),
      { type: "reset", id: "3", data: { attempt: 2, reason: "worker-lost" } },
      delta("4", "fresh"),
      end("5", "completed"),
    ]);
    expect(reply.text).toBe("fresh");
  });

  test("a failed `end` keeps its error for the user", () => {
    const reply = applyAll([start("1"), end("2", "failed", { code: "PROVIDER_ERROR", message: "upstream 500" })]);
    expect(reply.status).toBe("failed");
    expect(reply.error).toEqual({ code: "PROVIDER_ERROR", message: "upstream 500" });
  });

  test("nothing applies after `end`", () => {
    const reply = applyAll([start("1"), delta("2", "done"), end("3", "cancelled"), delta("4", " more")]);
    expect(reply.text).toBe("done");
    expect(reply.status).toBe("cancelled");
  });

  test("property: any mix of replays (reconnects at random cursors) yields exactly the log's text", () => {
    fc.assert(
      fc.property(
        fc.array(fc.string({ maxLength: 5 }), { minLength: 1, maxLength: 30 }),
        fc.array(fc.nat(), { maxLength: 6 }),
        (deltas, reconnectPoints) => {
          const log: StreamEvent[] = [start("1"), ...deltas.map((text, index) => delta(String(index + 2), text)), end(String(deltas.length + 2), "completed")];
          // Each reconnect replays the log from some earlier position (a stale cursor), duplicating events.
          const delivered: StreamEvent[] = [];
          let position = 0;
          for (const point of [...reconnectPoints.map((value) => value % log.length)].sort((a, b) => a - b)) {
            delivered.push(...log.slice(position, Math.max(position, point + 1)));
            position = Math.max(position, point + 1);
            delivered.push(...log.slice(Math.floor(point / 2), position));
          }
          delivered.push(...log.slice(position));
          const reply = applyAll(delivered);
          expect(reply.text).toBe(deltas.join(""));
          expect(reply.status).toBe("completed");
        },
      ),
    );
  });
});
