/**
 * No leaks: clients that connect and abort at random moments (before the
 * headers, during the replay, while live, right as the stream ends) leave no
 * subscription, listener, timer or open response behind.
 */
import { describe, expect, it } from "vitest";
import { systemClock, type Clock } from "../../src/time/clock.ts";
import type { StreamHub } from "../../src/streaming/stream-hub.ts";
import { createStreamWriter } from "../../src/streaming/stream-writer.ts";
import { openSse } from "../support/streaming/http-sse-client.ts";
import { serveHubOverHttp } from "../support/streaming/serve-hub-over-http.ts";
import { createStreamingRig } from "../support/streaming/streaming-rig.ts";

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
    const generations = taskIds.map(async (taskId, index) => {
      const { attempt } = await rig.log.beginAttempt(taskId);
      const writer = createStreamWriter({ log: rig.log, taskId, attempt, coalesceWindowMs: 2 });
      for (let token = 0; token < 20 * (index + 1); token += 1) {
        writer.appendText(`${token} `);
        await sleep(1);
      }
      await writer.end({ status: "completed" });
    });

    const cycles = Array.from({ length: 400 }, async (_, cycle) => {
      await sleep(Math.floor(random() * 250));
      const taskId = taskIds[cycle % taskIds.length] ?? "l0";
      const abortAfterMs = Math.floor(random() * 20);
      const abort = new AbortController();
      const timer = setTimeout(() => abort.abort(), abortAfterMs);
      try {
        // The abort may come before the headers (during the attach), during the replay, live, or after the end.
        const connection = await openSse(`${server.baseUrl}/api/stream/${taskId}`, {}, abort.signal);
        if (!abort.signal.aborted) await Promise.race([connection.closed, new Promise((resolve) => abort.signal.addEventListener("abort", resolve))]);
        connection.abort();
      } catch {
        // aborted before the response
      } finally {
        clearTimeout(timer);
      }
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
