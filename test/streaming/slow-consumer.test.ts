/**
 * PROTOCOL.md 5, over real sockets: a client that stops reading is cut off
 * (retry hint, then the socket is freed) without holding up the others, and
 * loses nothing: it resumes from the last id it parsed.
 */
import { describe, expect, it } from "vitest";
import { openSse } from "../support/streaming/http-sse-client.ts";
import { interpret } from "../support/streaming/memory-viewer.ts";
import { serveHubOverHttp } from "../support/streaming/serve-hub-over-http.ts";
import { createStreamingRig } from "../support/streaming/streaming-rig.ts";

describe("slow consumer over HTTP", () => {
  it("closes a client whose socket stays full, keeps serving the others, and the slow one resumes without loss", async () => {
    const rig = createStreamingRig({
      log: { limits: { maxBytes: 64 * 1024 * 1024, maxEventBytes: 1024 * 1024 } },
      hub: { slowConsumerTimeoutMs: 300 },
    });
    const server = await serveHubOverHttp(rig.hub, { closeGraceMs: 300 });
    const { attempt } = await rig.log.beginAttempt("big");
    const slow = await openSse(`${server.baseUrl}/api/stream/big`);
    const fast = await openSse(`${server.baseUrl}/api/stream/big`);
    await slow.waitForEvents(1);
    slow.pause();

    // ~12 MB: more than the loopback socket buffers on both sides can hold.
    const chunk = "x".repeat(200 * 1024);
    let expected = "";
    for (let index = 0; index < 60; index += 1) {
      const delta = `${index}:${chunk}`;
      await rig.log.append("big", attempt, [{ type: "text-delta", delta }]);
      expected += delta;
    }
    await rig.log.end("big", attempt, { status: "completed" });

    await fast.closed;
    expect(interpret(fast.parser.events)).toMatchObject({ text: expected, ends: 1 });
    // The server gave up on the slow client: its viewer is released and its socket closed.
    await expect.poll(() => rig.hub.stats().viewers).toBe(0);
    await expect.poll(() => server.openResponses(), { timeout: 5_000 }).toBe(0);
    // The client wakes up, reads what its buffers held, finds the connection closed without an end, and resumes.
    slow.resume();
    await slow.closed;
    expect(interpret(slow.parser.events).ends).toBe(0);

    const resumed = await openSse(`${server.baseUrl}/api/stream/big`, { "Last-Event-ID": slow.parser.lastEventId });
    await resumed.closed;
    expect(interpret([...slow.parser.events, ...resumed.parser.events])).toMatchObject({ text: expected, ends: 1 });
    await server.close();
  }, 60_000);
});
