import { describe, expect, it, onTestFinished, vi } from "vitest";
import { connectTestRedis, uniqueKeyPrefix } from "../../test/support/servers/redis.ts";
import { createHubSubscriptions } from "./hub-subscriptions.ts";

function subscriptionsOnRealRedis() {
  const subscriber = connectTestRedis();
  const admin = connectTestRedis();
  const errors: unknown[] = [];
  const subscriptions = createHubSubscriptions({ subscriber, sharded: false, reportError: (error) => errors.push(error) });
  onTestFinished(async () => {
    await subscriptions.close();
    subscriber.disconnect();
    admin.disconnect();
  });
  const subscribers = async (channel: string): Promise<number> => ((await admin.call("PUBSUB", "NUMSUB", channel)) as [string, number])[1];
  return { subscriber, subscriptions, subscribers, errors, prefix: uniqueKeyPrefix("subscriptions") };
}

describe("hub subscriptions", () => {
  it("sends the subscribes of one event-loop turn as one SUBSCRIBE, and the unsubscribes as one UNSUBSCRIBE", async () => {
    const { subscriber, subscriptions, subscribers, prefix } = subscriptionsOnRealRedis();
    const subscribe = vi.spyOn(subscriber, "subscribe");
    const unsubscribe = vi.spyOn(subscriber, "unsubscribe");
    const channels = ["a", "b", "c", "d"].map((name) => `${prefix}${name}`);
    await Promise.all(channels.map((channel) => subscriptions.subscribe([channel])));
    expect(subscribe.mock.calls).toEqual([channels]);
    for (const channel of channels) expect(await subscribers(channel)).toBe(1);

    for (const channel of channels) subscriptions.unsubscribe(channel);
    await subscriptions.close();
    expect(unsubscribe.mock.calls).toEqual([channels]);
    for (const channel of channels) expect(await subscribers(channel)).toBe(0);
  });

  it("keeps the order of a subscribe, an unsubscribe and a subscribe again of one channel in one turn", async () => {
    const { subscriber, subscriptions, subscribers, prefix, errors } = subscriptionsOnRealRedis();
    const subscribe = vi.spyOn(subscriber, "subscribe");
    const unsubscribe = vi.spyOn(subscriber, "unsubscribe");
    const reopened = `${prefix}reopened`;
    const released = `${prefix}released`;
    const first = subscriptions.subscribe([reopened, released]);
    subscriptions.unsubscribe(reopened);
    subscriptions.unsubscribe(released);
    // A new stream of the same task, opened in the same turn as the old one was destroyed.
    await Promise.all([first, subscriptions.subscribe([reopened])]);
    expect(subscribe.mock.calls).toEqual([[reopened, released], [reopened]]);
    expect(unsubscribe.mock.calls).toEqual([[reopened, released]]);
    expect(await subscribers(reopened)).toBe(1);
    expect(await subscribers(released)).toBe(0);
    expect(subscriptions.count()).toBe(1);
    expect(errors).toEqual([]);
  });

  it("fails every subscribe of a batch whose SUBSCRIBE failed", async () => {
    const { subscriber, subscriptions, prefix } = subscriptionsOnRealRedis();
    subscriber.disconnect();
    const results = await Promise.allSettled([subscriptions.subscribe([`${prefix}x`]), subscriptions.subscribe([`${prefix}y`])]);
    expect(results.map((result) => result.status)).toEqual(["rejected", "rejected"]);
  });
});
