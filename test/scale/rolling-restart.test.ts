import { beforeAll, describe, expect, it } from "vitest";
import { whenOutput, type SluiceProcess } from "../support/sluice/sluice-process.ts";
import { registerUser, waitForFinalReply, type ChatUser } from "../support/client/chat-api.ts";
import { analyseTask } from "../support/client/stream-recorder.ts";
import { closingHint, followStream, type ClientEvent, type FollowedStream } from "../support/client/follow-stream.ts";
import { clusterStartTimeoutMs, takeoverSettings } from "../support/sluice/environment.ts";
import { useSluice } from "../support/sluice/use-sluice.ts";

// A deploy: every process of a 2 API + 2 worker cluster is replaced one at a time (SIGTERM, wait
// for the exit, start the replacement) while streams run: 12 at first, then 4 more before each later
// restart (24 in all), so every restart meets live generations and viewers however slow the machine
// is. A reply is 120 words at 20 words/s (~6 s per attempt).
const words = 120;
let user: ChatUser;

const cluster = useSluice({
  mode: "processes",
  label: "scaleroll",
  topology: { apis: 2, workers: 2 },
  redis: "private",
  env: { ...takeoverSettings, SIMULATED_TOKENS_PER_SECOND: "20", SIMULATED_TOKEN_COUNT: String(words), SSE_RETRY_MS: "200" },
}, clusterStartTimeoutMs);
beforeAll(async () => {
  user = await registerUser(cluster.apis[0]?.url ?? "", "roll");
}, clusterStartTimeoutMs);

interface RunningStream {
  conversationId: string;
  taskId: string;
  client: FollowedStream;
}

const deltas = (count: number) => (events: readonly ClientEvent[]): boolean => events.filter((event) => event.type === "text-delta").length >= count;

/** Starts `count` generations through whichever API is up and follows each from a spread of APIs. */
async function startStreams(count: number, offset: number): Promise<RunningStream[]> {
  return Promise.all(
    Array.from({ length: count }, async (_, index) => {
      const baseUrl = cluster.apis[0]?.url ?? "";
      const conversation = await user.call<{ id: string }>("POST", "/api/conversations", { baseUrl });
      expect(conversation.status, conversation.text).toBe(201);
      const accepted = await user.send(conversation.body.id, `Stream number ${offset + index}`, { baseUrl });
      const client = followStream({
        taskId: accepted.taskId,
        token: user.token,
        // Only processes that are up: the restart drains one from the pool before stopping it.
        pickApi: (connection) => cluster.apis[(offset + index + connection) % Math.max(1, cluster.apis.length)]?.url,
        // The server's hint is 200 ms + jitter; the cap keeps the test short.
        retryCapMs: 300,
        deadlineMs: 85_000,
      });
      return { conversationId: conversation.body.id, taskId: accepted.taskId, client };
    }),
  );
}

describe("rolling restart under load", () => {
  it("replaces every process one at a time: nothing lost or duplicated, one end per stream, every saved message equals its streamed text", async () => {
    const [api1, api2] = cluster.apis as [SluiceProcess, SluiceProcess];
    const originalWorkers = [...cluster.workers];
    const streams: RunningStream[] = [];
    /** A wave of new streams, live (two deltas each) before the next restart, so every restart meets load. */
    const wave = async (count: number): Promise<RunningStream[]> => {
      const started = await startStreams(count, streams.length);
      streams.push(...started);
      await Promise.all(started.map((stream) => stream.client.until(deltas(2), "two text deltas")));
      return started;
    };
    /** The not-yet-restarted worker running most of these generations: restarting it must hand them back. */
    const busiestWorker = async (live: readonly RunningStream[]): Promise<SluiceProcess> => {
      // A worker logs each task it runs ("first chunk received"); wait until those lines have reached us.
      await whenOutput(cluster.workers, () => live.every((stream) => cluster.workers.some((worker) => worker.output().includes(stream.taskId))) || undefined, "the workers' log lines");
      const running = (worker: SluiceProcess): number => live.filter((stream) => worker.output().includes(stream.taskId)).length;
      const candidates = originalWorkers.filter((worker) => cluster.workers.includes(worker));
      return candidates.reduce((best, worker) => (running(worker) > running(best) ? worker : best));
    };

    const exits: Array<{ code: number | null; signal: NodeJS.Signals | null }> = [];
    exits.push((await cluster.restart(await busiestWorker(await wave(12)))).exit);
    await wave(4);
    exits.push((await cluster.restart(api1)).exit);
    exits.push((await cluster.restart(await busiestWorker(await wave(4)))).exit);
    await wave(4);
    exits.push((await cluster.restart(api2)).exit);
    expect(exits, cluster.output().slice(-4000)).toEqual(Array.from({ length: 4 }, () => ({ code: 0, signal: null })));

    await Promise.all(streams.map((stream) => stream.client.done));
    const baseUrl = cluster.apis[0]?.url ?? "";
    for (const stream of streams) {
      const verdict = analyseTask(stream.client.taskId, stream.client.events);
      expect(verdict, `${stream.taskId}: ${JSON.stringify(stream.client.connections)}`).toMatchObject({ lost: 0, duplicated: 0, outOfOrder: 0, ends: 1, endStatus: "completed" });
      expect(stream.client.events.at(-1)?.type).toBe("end");
      const reply = await waitForFinalReply({ ...user, conversation: (id) => user.conversation(id, baseUrl) }, stream.conversationId, stream.taskId);
      expect(reply.status).toBe("completed");
      expect(reply.content).toBe(verdict.text);
      expect(reply.content.split(" ")).toHaveLength(words);
    }
    // The restarts reached the clients: streams on a stopped API were told to retry and resumed elsewhere.
    const resumed = streams.filter((stream) => stream.client.connections.some((connection) => closingHint(connection) !== undefined && !connection.ended));
    expect(resumed.length).toBeGreaterThan(0);
    // And the worker restarts reached the generations: handed back, continued after a `continue` (the simulated model continues a reply).
    expect(streams.filter((stream) => stream.client.events.some((event) => event.type === "continue")).length).toBeGreaterThan(0);
  }, 90_000);
});
