import { createServer, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseCursor } from "./read-sse.ts";
import { analyseTask, createStreamRecorder, type RecordedEvent } from "./stream-recorder.ts";

const event = (cursor: string, type: string, extra: Record<string, unknown> = {}, connection = 0): RecordedEvent => ({
  taskId: "t",
  connection,
  cursor,
  type,
  data: { type, ...extra },
  at: 0,
});

describe("analyseTask", () => {
  it("a clean stream has no loss, duplicate or reordering and one end", () => {
    const report = analyseTask("t", [
      event("a-1", "start"),
      event("a-2", "text-delta", { delta: "Hel" }),
      event("a-3", "text-delta", { delta: "lo" }, 1),
      event("a-4", "end", { status: "completed" }, 1),
    ]);
    expect(report).toMatchObject({ lost: 0, duplicated: 0, outOfOrder: 0, ends: 1, endStatus: "completed", text: "Hello", connections: 2 });
  });

  it("counts a gap as lost, a repeat as duplicated and a late entry as out of order", () => {
    const report = analyseTask("t", [
      event("a-1", "start"),
      event("a-2", "text-delta", { delta: "x" }),
      event("a-2", "text-delta", { delta: "x" }, 1),
      event("a-5", "text-delta", { delta: "z" }, 1),
      event("a-4", "text-delta", { delta: "y" }, 1),
      event("a-6", "end", { status: "completed" }, 1),
      event("a-6", "end", { status: "completed" }, 2),
    ]);
    // seq 3 never arrived; 2 and 6 twice; 4 after 5.
    expect(report).toMatchObject({ lost: 1, duplicated: 2, outOfOrder: 1, ends: 2 });
  });

  it("a log-replaced reset starts a new incarnation and discards the text", () => {
    const report = analyseTask("t", [
      event("a-1", "start"),
      event("a-2", "text-delta", { delta: "old" }),
      event("b-0", "reset", { reason: "log-replaced" }, 1),
      event("b-1", "start", {}, 1),
      event("b-2", "text-delta", { delta: "new" }, 1),
      event("b-3", "end", { status: "completed" }, 1),
    ]);
    expect(report).toMatchObject({ lost: 0, duplicated: 0, outOfOrder: 0, ends: 1, text: "new", resets: 1 });
  });

  it("parses cursors whose incarnation contains dashes", () => {
    expect(parseCursor("6b1e-0c9d-41")).toEqual({ incarnation: "6b1e-0c9d", seq: 41 });
    expect(parseCursor("nonsense")).toBeUndefined();
  });
});

describe("reading and resuming over HTTP", () => {
  // A server that replays a fixed log from after the Last-Event-ID, as Sluice does.
  const frames = Array.from({ length: 8 }, (_, index) => {
    const seq = index + 1;
    const type = seq === 8 ? "end" : "text-delta";
    const data = type === "end" ? { type, status: "completed" } : { type, delta: `w${seq} ` };
    return { seq, text: `id: i-${seq}\nevent: ${type}\ndata: ${JSON.stringify(data)}\n\n` };
  });
  let server: Server;
  let baseUrl = "";
  const seenLastEventIds: Array<string | undefined> = [];
  beforeAll(async () => {
    server = createServer((request, response) => {
      const last = request.headers["last-event-id"];
      seenLastEventIds.push(typeof last === "string" ? last : undefined);
      const after = typeof last === "string" ? (parseCursor(last)?.seq ?? 0) : 0;
      response.writeHead(200, { "content-type": "text/event-stream" });
      response.write("retry: 100\n\n: ping\n\n");
      for (const frame of frames.filter((candidate) => candidate.seq > after)) response.write(frame.text);
      response.end();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    if (!address || typeof address === "string") throw new Error("no address");
    baseUrl = `http://127.0.0.1:${address.port}`;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it("cuts inside a frame, drops the partial event and resumes after the last complete one", async () => {
    const recorder = createStreamRecorder({ baseUrl, token: "x", userId: "u" });
    const prefixBytes = "retry: 100\n\n: ping\n\n".length;
    // Connection 0 is cut in the middle of the third frame; connection 1 after two events.
    const cutAt = prefixBytes + (frames[0]?.text.length ?? 0) + (frames[1]?.text.length ?? 0) + 10;
    const report = await recorder.follow("t", (connection) => (connection === 0 ? { abortAfterBytes: cutAt } : connection === 1 ? { abortAfterEvents: 2 } : {}));
    expect(seenLastEventIds.slice(-3)).toEqual([undefined, "i-2", "i-4"]);
    expect(report).toMatchObject({ lost: 0, duplicated: 0, outOfOrder: 0, ends: 1, connections: 3 });
    expect(report.text).toBe("w1 w2 w3 w4 w5 w6 w7 ");
  });
});
