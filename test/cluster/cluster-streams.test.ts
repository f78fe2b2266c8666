import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { streamKeys } from "../../src/streaming/stream-keys.ts";
import { expectOneEndLast, registerUser, replyOf, waitForFinalReply, type ChatUser } from "../support/client/chat-api.ts";
import { textOf } from "../support/client/read-sse.ts";
import type { RedisClusterRig } from "../support/servers/redis-cluster.ts";
import { startSluice, type InProcessSluice } from "../support/sluice/start-sluice.ts";

let sluice: InProcessSluice;
let cluster: RedisClusterRig;
let user: ChatUser;
beforeAll(async () => {
  // 60 words at 150 words/s ≈ 0.4 s per reply: long enough to cut a read off mid-stream.
  // A 30 s stall timeout: were sharded pub/sub broken, no stream would finish within the test timeout.
  sluice = await startSluice({ label: "cluster", redis: "cluster", env: { SIMULATED_TOKENS_PER_SECOND: "150", SIMULATED_TOKEN_COUNT: "60", COALESCE_WINDOW_MS: "0", STREAM_STALL_TIMEOUT_MS: "30000" } });
  cluster = sluice.redisCluster!;
  user = await registerUser(sluice.url, "cluster");
}, 60_000);
afterAll(async () => {
  await sluice?.stop();
});

describe("Sluice on a 3-master Redis Cluster", () => {
  it("completes generations whose stream keys land on every master, each log on the master that owns its {taskId} slot", async () => {
    const keyPrefix = sluice.env.REDIS_KEY_PREFIX ?? "";
    const shardsSeen = new Set<number>();
    for (let sent = 0; shardsSeen.size < 3; sent += 1) {
      // (2/3)^40 per missing master: the loop ends long before this bound unless sharding is broken.
      expect(sent, `tasks covered masters ${[...shardsSeen].join(",")} only`).toBeLessThan(40);
      const conversation = await user.createConversation();
      const accepted = await user.send(conversation.id, `echo:reply number ${sent}`);
      const stream = await user.stream(accepted.taskId);
      expect(expectOneEndLast(stream).status).toBe("completed");
      expect(textOf(stream.events)).toBe(`reply number ${sent}`);
      expect(replyOf(await user.conversation(conversation.id), accepted.taskId).content).toBe(`reply number ${sent}`);

      const logKey = streamKeys(keyPrefix, accepted.taskId).log;
      const owner = await cluster.ownerOf(`{${accepted.taskId}}`);
      // Without -c, redis-cli answers MOVED for a key of another master: EXISTS = 1 proves where the log lives.
      expect((await cluster.cli(owner, "EXISTS", logKey)).trim()).toBe("1");
      shardsSeen.add(owner);
    }
    expect([...shardsSeen].sort()).toEqual([0, 1, 2]);
  });

  it("resumes with Last-Event-ID: the events after the cursor, nothing twice", async () => {
    const conversation = await user.createConversation();
    const accepted = await user.send(conversation.id, "Explain resumable streams");
    const watcher = user.stream(accepted.taskId);
    const first = await user.stream(accepted.taskId, { stopAfter: (_event, all) => all.filter((event) => event.event === "text-delta").length >= 3 });
    const cursor = first.events.at(-1)?.id ?? "";
    expect(cursor).toMatch(/^[^-]+-\d+$/);

    const resumed = await user.stream(accepted.taskId, { headers: { "last-event-id": cursor } });
    expect(resumed.status).toBe(200);
    expect(resumed.events.some((event) => event.event === "start")).toBe(false);
    expectOneEndLast(resumed);
    const whole = await watcher;
    expect([...first.events, ...resumed.events].map((event) => event.id)).toEqual(whole.events.map((event) => event.id));
    const reply = await waitForFinalReply(user, conversation.id, accepted.taskId);
    expect(reply.status).toBe("completed");
    expect(reply.content).toBe(textOf(whole.events));
  });

  it("answers /readyz while every master is up", async () => {
    const ready = await fetch(`${sluice.url}/readyz`);
    expect(ready.status).toBe(200);
  });
});
