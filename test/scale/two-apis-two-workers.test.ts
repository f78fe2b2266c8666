import { beforeAll, describe, expect, it } from "vitest";
import { whenOutput, type SluiceProcess } from "../support/sluice/sluice-process.ts";
import { readSse, textOf } from "../support/client/read-sse.ts";
import { registerUser, waitForFinalReply, type ChatUser } from "../support/client/chat-api.ts";
import { analyseTask } from "../support/client/stream-recorder.ts";
import { followStream, type ClientEvent, type FollowedStream } from "../support/client/follow-stream.ts";
import { redisConnectionsOf } from "../support/servers/redis-connections-of.ts";
import { clusterStartTimeoutMs, takeoverSettings } from "../support/sluice/environment.ts";
import { useSluice } from "../support/sluice/use-sluice.ts";

// Two API and two worker processes on one database, one private Redis, one AUTH_SECRET.
// A reply is 150 words at 50 words/s (~3 s): long enough to act mid-stream.
let apiA: SluiceProcess;
let apiB: SluiceProcess;
let user: ChatUser;

/** A command connection to this cluster's own redis-server, for CLIENT LIST. */
const redisAdmin = () => cluster.privateRedis!.admin();

const cluster = useSluice({ mode: "processes", label: "scale2x2", topology: { apis: 2, workers: 2 }, redis: "private", env: { ...takeoverSettings, SIMULATED_TOKENS_PER_SECOND: "50", SIMULATED_TOKEN_COUNT: "150" } }, clusterStartTimeoutMs);
beforeAll(async () => {
  [apiA, apiB] = cluster.apis as [SluiceProcess, SluiceProcess];
  user = await registerUser(apiA.url ?? "", "scale");
}, clusterStartTimeoutMs);

const deltas = (count: number) => (events: readonly ClientEvent[]): boolean => events.filter((event) => event.type === "text-delta").length >= count;
const follow = (taskId: string, pickApi: (connection: number) => string | undefined): FollowedStream =>
  followStream({ taskId, token: user.token, pickApi, deadlineMs: 45_000 });

/** The ids a fresh reader of the whole log gets: what a resuming client must have seen, exactly. */
async function fullReadIds(taskId: string, baseUrl: string): Promise<Array<string | undefined>> {
  const fresh = await readSse(`${baseUrl}/api/stream/${taskId}`, { headers: { authorization: `Bearer ${user.token}` } });
  expect(fresh.status).toBe(200);
  return fresh.events.map((event) => event.id);
}

describe("two API and two worker processes", () => {
  it("a client switches mid-stream from API A to API B with Last-Event-ID and continues exactly", async () => {
    const conversation = await user.createConversation();
    const accepted = await user.send(conversation.id, "A long answer, please");
    const stream = follow(accepted.taskId, (connection) => (connection === 0 ? apiA.url : apiB.url));
    await stream.until(deltas(5), "five text deltas on A");
    stream.switchNow();
    await stream.done;

    expect(stream.connections.map((connection) => [connection.url, connection.status])).toEqual([[apiA.url, 200], [apiB.url, 200]]);
    expect(stream.connections[1]?.events, "B delivered the rest").toBeGreaterThan(0);
    const verdict = analyseTask(stream.taskId, stream.events);
    expect(verdict).toMatchObject({ lost: 0, duplicated: 0, outOfOrder: 0, ends: 1, endStatus: "completed", resets: 0 });
    expect(stream.events.map((event) => event.cursor)).toEqual(await fullReadIds(accepted.taskId, apiA.url ?? ""));
    const reply = await waitForFinalReply(user, conversation.id, accepted.taskId);
    expect(reply.status).toBe("completed");
    expect(reply.content).toBe(verdict.text);
    expect(reply.content.split(" ")).toHaveLength(150);
  });

  it("a cancel sent to API B ends the stream watched on API A; the saved text is what was streamed", async () => {
    const conversation = await user.createConversation();
    const accepted = await user.send(conversation.id, "Write a long story");
    const stream = follow(accepted.taskId, () => apiA.url);
    await stream.until(deltas(3), "three text deltas");
    const cancel = await user.call("POST", `/api/stream/${accepted.taskId}/cancel`, { baseUrl: apiB.url ?? "" });
    expect(cancel.status, cancel.text).toBe(202);
    await stream.done;

    const verdict = analyseTask(stream.taskId, stream.events);
    expect(verdict).toMatchObject({ lost: 0, duplicated: 0, ends: 1, endStatus: "cancelled" });
    expect(stream.events.at(-1)?.type).toBe("end");
    expect(verdict.text.length).toBeGreaterThan(0);
    const reply = await waitForFinalReply(user, conversation.id, accepted.taskId);
    expect(reply.status).toBe("cancelled");
    expect(reply.content).toBe(verdict.text);
  });

  it("each API process holds exactly one Redis subscriber connection, however many viewers it serves", async () => {
    const subscribersOf = async (api: SluiceProcess): Promise<string[]> =>
      (await redisConnectionsOf(redisAdmin(), api.pid)).filter((name) => name.endsWith(":subscriber"));
    const idleA = await redisConnectionsOf(redisAdmin(), apiA.pid);
    expect(await subscribersOf(apiA)).toEqual(["sluice-api:subscriber"]);
    expect(await subscribersOf(apiB)).toEqual(["sluice-api:subscriber"]);

    // Two generations, 6 viewers on A and 3 on B, all live at once.
    const tasks = await Promise.all([0, 1].map(async () => (await user.send((await user.createConversation()).id, "Tell me everything")).taskId));
    const viewers = [
      ...Array.from({ length: 6 }, (_, index) => follow(tasks[index % 2] ?? "", () => apiA.url)),
      ...Array.from({ length: 3 }, (_, index) => follow(tasks[index % 2] ?? "", () => apiB.url)),
    ];
    await Promise.all(viewers.map((viewer) => viewer.until(deltas(2), "two text deltas")));
    expect(await subscribersOf(apiA)).toEqual(["sluice-api:subscriber"]);
    expect(await subscribersOf(apiB)).toEqual(["sluice-api:subscriber"]);
    // Viewers add no Redis connections at all: the same set as when idle.
    expect(await redisConnectionsOf(redisAdmin(), apiA.pid)).toEqual(idleA);
    const everySubscriber = (await redisAdmin().call("CLIENT", "LIST")) as string;
    expect(everySubscriber.match(/name=sluice-api:subscriber /g), "one per API process in the whole cluster").toHaveLength(2);

    await Promise.all(viewers.map((viewer) => viewer.done));
    for (const viewer of viewers) expect(analyseTask(viewer.taskId, viewer.events)).toMatchObject({ lost: 0, duplicated: 0, ends: 1, endStatus: "completed" });
  });

  it("a worker killed with SIGKILL mid-stream: the other worker continues the reply, the client sees continue and one end, the saved text is the text it holds", async () => {
    const conversation = await user.createConversation();
    const accepted = await user.send(conversation.id, "One more long answer");
    const stream = follow(accepted.taskId, () => apiB.url);
    await stream.until(deltas(3), "three text deltas");
    const victim = await whenOutput(
      cluster.workers,
      () => cluster.workers.find((worker) => worker.output().includes(accepted.taskId) && worker.output().includes("first chunk received")),
      "the worker running the task",
    );
    const survivor = cluster.workers.find((worker) => worker !== victim);
    victim.kill("SIGKILL");
    await victim.exited;
    await stream.done;

    const verdict = analyseTask(stream.taskId, stream.events);
    expect(verdict, JSON.stringify(stream.events.map((event) => event.type))).toMatchObject({ lost: 0, duplicated: 0, outOfOrder: 0, ends: 1, endStatus: "completed" });
    // The simulated model continues a reply (PROTOCOL.md 4.3): `continue`, no reset.
    expect(verdict.resets).toBe(0);
    const continued = stream.events.find((event) => event.type === "continue");
    expect(continued?.data).toMatchObject({ type: "continue", attempt: 2 });
    expect(stream.events.at(-1)?.type).toBe("end");
    expect(survivor?.output()).toContain(accepted.taskId);
    const reply = await waitForFinalReply(user, conversation.id, accepted.taskId);
    expect(reply.status).toBe("completed");
    expect(reply.content).toBe(verdict.text);
    expect(reply.content.split(" ")).toHaveLength(150);
    // A late reader on the other API gets the same final text from the log.
    expect(textOf((await user.stream(accepted.taskId, { baseUrl: apiA.url ?? "" })).events)).toBe(reply.content);
  });
});
