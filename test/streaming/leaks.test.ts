/**
 * No leaks: clients that connect and abort at random moments (before the
 * headers, during the replay, while live, right as the stream ends) leave no
 * subscription, listener, timer or open response behind.
 */
import { describe, expect, it } from "vitest";
import { systemClock, type Clock } from "../../src/time/clock.ts";
import type { StreamHub } from "../../src/streaming/stream-hub.ts";
import { openAndAbort, openSse } from "../support/streaming/http-sse-client.ts";
import { serveHubOverHttp } from "../support/streaming/serve-hub-over-http.ts";
import { createStreamingRig, writeGeneration } from "../support/streaming/streaming-rig.ts";

/** The system clock, counting timers that are neither fired nor cleared. */
function countingClock(): Clock & { outstanding(): number } {
  const live = new Set<unknown>();
  return {
    monotonicMs: () => systemClock.monotonicMs(),
    wallClockMs: () => systemClock.wallClockMs(),
    setTimeout(callback, delayMs) {
      const handle = systemClock.setTimeout(() => {
        live.delete(handle);
        callback();
      }, delayMs);
      live.add(handle);
      return handle;
    },
    clearTimeout(handle) {
      live.delete(handle);
      systemClock.clearTimeout(handle);
    },
    outstanding: () => live.size,
  };
}

const sleep = async (milliseconds: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, milliseconds));

describe("connect/abort cycles", () => {
  it("leave no subscription, listener, timer or response behind", async () => {
    const clock = countingClock();
    const rig = createStreamingRig({ hub: { clock, stallTimeoutMs: 100 } });
    const listenersBefore = { message: rig.subscriber.listenerCount("message"), ready: rig.subscriber.listenerCount("ready") };
    // Attaching a viewer takes a while (as with a slow Redis): clients also leave in the middle of it.
    let delay = 0;
    const hub: StreamHub = {
      ...rig.hub,
      open: async (options) => {
        delay = (delay + 3) % 11;
        await sleep(delay);
        return await rig.hub.open(options);
      },
    };
    const server = await serveHubOverHttp(hub, { clock, heartbeatMs: 10 });
    const taskIds = Array.from({ length: 10 }, (_, index) => `l${index}`);

    // Generations run in the background, some ending during the cycles.
    let seed = 7;
    const random = (): number => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return seed / 2_147_483_648;
    };
    const generations = taskIds.map((taskId, index) => writeGeneration(rig.log, taskId, 20 * (index + 1)));

    const cycles = Array.from({ length: 400 }, async (_, cycle) => {
      await sleep(Math.floor(random() * 250));
      const taskId = taskIds[cycle % taskIds.length] ?? "l0";
      await openAndAbort((signal) => openSse(`${server.baseUrl}/api/stream/${taskId}`, {}, signal), Math.floor(random() * 20));
    });
    await Promise.all([...generations, ...cycles]);

    await expect.poll(() => server.openResponses(), { timeout: 5_000 }).toBe(0);
    // A client may leave while its viewer is still being attached: wait until every request handler has returned.
    await server.idle();
    await expect.poll(() => rig.hub.stats(), { timeout: 5_000 }).toEqual({ streams: 0, viewers: 0, channels: 0, timers: 0 });
    const channels = taskIds.map((taskId) => rig.log.keys(taskId).notify);
    await expect.poll(async () => await rig.redis.call("PUBSUB", "NUMSUB", ...channels)).toEqual(channels.flatMap((channel) => [channel, 0]));
    expect(clock.outstanding()).toBe(0);
    await server.close();
    expect({ message: rig.subscriber.listenerCount("message"), ready: rig.subscriber.listenerCount("ready") }).toEqual(listenersBefore);
  });
});
