/**
 * However many streams and viewers, a process holds exactly ONE subscriber
 * connection (PROTOCOL.md 8): 10,000 viewers on 100 streams, checked on the
 * server with CLIENT LIST by the connection names the rig sets.
 */
import { describe, expect, it } from "vitest";
import { createMemoryViewer, interpret, type MemoryViewer } from "../support/streaming/memory-viewer.ts";
import { clientsNamed, createStreamingRig } from "../support/streaming/streaming-rig.ts";

describe("10,000 viewers", () => {
  it("share one subscriber connection, one channel per stream, and all get the whole stream", async () => {
    const rig = createStreamingRig();
    const streamCount = 100;
    const viewersPerStream = 100;
    const taskIds = Array.from({ length: streamCount }, (_, index) => `many${index}`);
    const attempts = await Promise.all(taskIds.map(async (taskId) => (await rig.log.beginAttempt(taskId)).attempt));
    const viewers: Array<{ taskId: string; memory: MemoryViewer }> = [];
    await Promise.all(
      taskIds.flatMap((taskId) =>
        Array.from({ length: viewersPerStream }, async () => {
          const memory = createMemoryViewer();
          const opened = await rig.hub.open({ taskId, sink: memory.sink });
          if (opened.status !== "ready") throw new Error("not ready");
          opened.viewer.start();
          viewers.push({ taskId, memory });
        }),
      ),
    );
    expect(rig.hub.stats()).toMatchObject({ streams: streamCount, viewers: streamCount * viewersPerStream, channels: streamCount });

    const subscribers = await clientsNamed(rig.redis, `${rig.name}:subscriber`);
    expect(subscribers).toHaveLength(1);
    expect(subscribers[0]?.sub).toBe(String(streamCount));
    // This process's connections: one for commands, one for pub/sub. Nothing per viewer or per stream.
    expect(await clientsNamed(rig.redis, rig.name)).toHaveLength(2);

    await Promise.all(
      taskIds.map(async (taskId, index) => {
        const attempt = attempts[index] ?? 1;
        await rig.log.append(taskId, attempt, [{ type: "text-delta", delta: `hello ${taskId}` }]);
        await rig.log.append(taskId, attempt, [{ type: "text-delta", delta: "!" }]);
        await rig.log.end(taskId, attempt, { status: "completed" });
      }),
    );
    await expect.poll(() => viewers.filter((viewer) => viewer.memory.ended).length, { timeout: 10_000 }).toBe(streamCount * viewersPerStream);
    for (const { taskId, memory } of viewers) {
      expect(interpret(memory.parser.events)).toMatchObject({ text: `hello ${taskId}!`, seqs: [1, 2, 3, 4], ends: 1 });
    }
    expect(rig.hub.stats()).toEqual({ streams: 0, viewers: 0, channels: 0, timers: 0 });
    await expect.poll(async () => (await clientsNamed(rig.redis, `${rig.name}:subscriber`))[0]?.sub).toBe("0");
  });
});
