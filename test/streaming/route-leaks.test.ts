/**
 * No leaks through the real stream route either (src/api/streams/stream-routes.ts,
 * in the real app): clients that connect and abort at random moments — during
 * the lookup and the lease, during the replay, live, right as the stream ends —
 * leave no viewer, channel subscription or open-stream lease behind, by read
 * token and by Bearer token (whose task lookup is awaited before serveSse). The
 * hub's own timers and listeners are counted by leaks.test.ts.
 */
import { once } from "node:events";
import { connect as connectTcp } from "node:net";
import pg from "pg";
import { describe, expect, it, onTestFinished } from "vitest";
import { createGenerationQueue } from "../../src/queue/generation-queue.ts";
import { createStreamLog } from "../../src/streaming/stream-log.ts";
import { registerUser } from "../support/client/chat-api.ts";
import { startSluice } from "../support/sluice/start-sluice.ts";
import { connectTestRedis } from "../support/servers/redis.ts";
import { openAndAbort, openSse, type SseConnection } from "../support/streaming/http-sse-client.ts";
import { writeGeneration } from "../support/streaming/streaming-rig.ts";

const openStreamsPerUser = 20;

/** Opens a raw connection and sends a GET for the stream; `hangUp` closes it and resolves once the server has closed its side too. */
async function askWithoutReading(baseUrl: string, path: string, headers: Record<string, string>): Promise<{ hangUp(): Promise<void> }> {
  const { hostname, port } = new URL(baseUrl);
  const socket = connectTcp(Number(port), hostname);
  await once(socket, "connect");
  const lines = [`GET ${path} HTTP/1.1`, `Host: ${hostname}`, "Accept: text/event-stream", ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`)];
  socket.write(`${lines.join("\r\n")}\r\n\r\n`);
  socket.resume();
  return {
    hangUp: async () => {
      const closed = once(socket, "close");
      socket.end();
      await closed;
    },
  };
}

const sleep = async (milliseconds: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, milliseconds));

/** A gauge of the API's own /metrics. */
async function gauge(baseUrl: string, name: string): Promise<number> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const match = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
  if (!match?.[1]) throw new Error(`no ${name} in /metrics`);
  return Number(match[1]);
}

describe("connect/abort cycles through the real route", () => {
  it("leave no viewer, subscription or open-stream lease behind", async () => {
    const server = await startSluice({ label: "route_leaks", topology: { apis: 1, workers: 0 }, env: { HEARTBEAT_INTERVAL_MS: "100", LIMIT_OPEN_STREAMS_PER_USER: String(openStreamsPerUser) } });
    onTestFinished(async () => await server.stop());
    const redis = connectTestRedis();
    // No worker: the test writes the generations through the real log, on the server's key prefix.
    const log = createStreamLog({ redis, keyPrefix: server.env.REDIS_KEY_PREFIX ?? "" });
    const streams = await Promise.all(
      Array.from({ length: 3 }, async () => {
        const user = await registerUser(server.url, "leaks");
        const accepted = await user.send((await user.createConversation()).id, "hello");
        return {
          user,
          taskId: accepted.taskId,
          tokenUrl: new URL(accepted.streamUrl, server.url).toString(),
          bearerUrl: `${server.url}/api/stream/${accepted.taskId}`,
        };
      }),
    );

    let seed = 11;
    const random = (): number => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return seed / 2_147_483_648;
    };
    // Generations run in the background, ending during the cycles.
    const generations = streams.map(({ taskId }, index) => writeGeneration(log, taskId, 30 * (index + 1)));
    const cycles = Array.from({ length: 150 }, async (_, cycle) => {
      await sleep(Math.floor(random() * 250));
      const stream = streams[cycle % streams.length];
      if (!stream) return;
      // Half by read token, half by Bearer token (a lookup in PostgreSQL before serveSse).
      await openAndAbort(
        (signal) => (cycle % 2 === 0 ? openSse(stream.tokenUrl, {}, signal) : openSse(stream.bearerUrl, { authorization: `Bearer ${stream.user.token}` }, signal)),
        Math.floor(random() * 20),
      );
    });
    await Promise.all([...generations, ...cycles]);

    await expect.poll(async () => await gauge(server.url, "sluice_stream_viewers"), { timeout: 5_000 }).toBe(0);
    await expect.poll(async () => await gauge(server.url, "sluice_streams_active"), { timeout: 5_000 }).toBe(0);
    const channels = streams.map(({ taskId }) => log.keys(taskId).notify);
    await expect.poll(async () => await redis.call("PUBSUB", "NUMSUB", ...channels)).toEqual(channels.flatMap((channel) => [channel, 0]));
    // Every lease was released: each user can open the whole limit again (a leaked lease would answer 429).
    const reopened: SseConnection[] = [];
    try {
      for (const stream of streams) {
        for (let index = 0; index < openStreamsPerUser; index += 1) {
          const connection = await openSse(stream.tokenUrl);
          reopened.push(connection);
          expect(connection.status, connection.raw()).toBe(200);
        }
      }
    } finally {
      for (const connection of reopened) connection.abort();
    }
  }, 60_000);

  // A hang-up while the route awaits the Bearer path's task lookup (PostgreSQL) happens before
  // serveSse could listen for "close"; serveSse treats an already closed response as closed, or the
  // viewer, its subscription, its heartbeat and the open-stream lease (renewed forever) would stay,
  // and after LIMIT_OPEN_STREAMS_PER_USER such hang-ups the user would get 429 on every stream.
  for (const by of ["read token", "Bearer token"] as const) {
    it(`a client that hangs up while the server looks its task up keeps no open-stream slot and no viewer (${by})`, async () => {
      const limit = 3;
      const server = await startSluice({ label: "route_leaks", topology: { apis: 1, workers: 0 }, env: { LIMIT_OPEN_STREAMS_PER_USER: String(limit) } });
      onTestFinished(async () => await server.stop());
      const user = await registerUser(server.url, "leaver");
      const accepted = await user.send((await user.createConversation()).id, "hello");
      const bearer = { Authorization: `Bearer ${user.token}` };
      // A read token asks PostgreSQL only when the log is missing and the job is no longer pending
      // (generations-service whenStreamMissing): without the job, its open looks the task up too.
      if (by === "read token") {
        const queue = createGenerationQueue(connectTestRedis(), server.env.REDIS_KEY_PREFIX ?? "");
        await queue.remove(accepted.taskId);
        await queue.close();
      }
      // Holding the messages table makes the task lookup wait, so the hang-up lands inside it every time.
      const blocker = new pg.Client({ connectionString: server.env.DATABASE_URL });
      await blocker.connect();
      onTestFinished(async () => await blocker.end());
      const waitingForLock = async (): Promise<number> =>
        (await blocker.query<{ waiting: number }>("select count(*)::int as waiting from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'")).rows[0]?.waiting ?? 0;
      for (let index = 0; index < limit; index += 1) {
        await blocker.query("BEGIN");
        await blocker.query("LOCK TABLE messages IN ACCESS EXCLUSIVE MODE");
        const request = by === "Bearer token" ? await askWithoutReading(server.url, `/api/stream/${accepted.taskId}`, bearer) : await askWithoutReading(server.url, accepted.streamUrl, {});
        await expect.poll(waitingForLock).toBe(1);
        await request.hangUp();
        await blocker.query("COMMIT");
      }
      await expect.poll(async () => await gauge(server.url, "sluice_stream_viewers"), { timeout: 5_000 }).toBe(0);
      // A place among the user's open streams is free again (a kept lease answers 429 forever).
      await expect
        .poll(async () => {
          const connection = await openSse(`${server.url}/api/stream/${accepted.taskId}`, bearer);
          connection.abort();
          return connection.status;
        }, { timeout: 5_000 })
        .toBe(200);
    });
  }
});
