/**
 * Faults 12/13: clients that stop reading during large replies while normal
 * clients run, and thousands of connect/abort cycles. Normal clients are not
 * held up by the stalled ones, the API's memory stays bounded, and its Redis
 * connections and open-viewer gauge return to their baseline.
 * A private redis-server, so CLIENT LIST shows only this test's processes.
 */
import { request } from "node:http";
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createStreamRecorder } from "../rig/stream-recorder.ts";
import { chaosRuns, createConversation, echoPrompt, seededRandom, sendMessage, signUp, until } from "./support/chat-api.ts";
import { startPrivateRedis, type PrivateRedis } from "./support/private-redis.ts";
import { clusterStartTimeoutMs, startCluster, type Cluster } from "./support/start-cluster.ts";

const cycles = chaosRuns(1) > 1 ? 5_000 : 1_000;
let redis: PrivateRedis;
let cluster: Cluster;

beforeAll(async () => {
  redis = await startPrivateRedis({ appendOnly: false });
  cluster = await startCluster({ env: { REDIS_URL: redis.url, SIMULATED_TOKENS_PER_SECOND: "50000", LIMIT_MESSAGE_CHARS: "1000000" }, label: "leaks" });
}, clusterStartTimeoutMs);
afterAll(async () => {
  await cluster?.stop();
  await redis?.stop();
});

function rssBytes(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(match?.[1] ?? 0) * 1024;
}

async function sluiceRedisClients(): Promise<number> {
  const list = String(await redis.admin().call("CLIENT", "LIST"));
  return list.split("\n").filter((line) => / name=sluice-/.test(line)).length;
}

async function openViewers(): Promise<number> {
  const text = await (await fetch(`${cluster.url}/metrics`)).text();
  const match = /^sluice_stream_viewers(?:\{[^}]*\})? (\d+)/m.exec(text);
  return match ? Number(match[1]) : Number.NaN;
}

/** Opens a stream and never reads it: the kernel buffers fill and the server sees a slow consumer. */
function stalledReader(url: string, token: string): { close: () => void } {
  const target = new URL(url);
  const outgoing = request({ host: target.hostname, port: target.port, path: target.pathname, headers: { authorization: `Bearer ${token}` } });
  outgoing.on("response", (response) => response.pause());
  outgoing.on("error", () => undefined);
  outgoing.end();
  return { close: () => outgoing.destroy() };
}

describe("slow consumers and leaks", () => {
  it("readers that stop reading a large reply do not hold up normal readers", async () => {
    const random = seededRandom(121);
    const session = await signUp(cluster.url, "slow");
    const conversationId = await createConversation(session);
    // ~650,000 characters (~1 MB of SSE frames per reader): more than loopback socket buffers
    // usually hold, so a stalled reader backs up on the server.
    const { prompt, expected } = echoPrompt(random, 90_000);
    const accepted = await sendMessage(session, conversationId, prompt);
    const stalled = Array.from({ length: 10 }, () => stalledReader(`${cluster.url}/api/stream/${accepted.taskId}`, session.token));
    try {
      const recorders = Array.from({ length: 5 }, () => createStreamRecorder(session));
      const reports = await Promise.all(recorders.map((recorder) => recorder.follow(accepted.taskId, () => ({ idleTimeoutMs: 20_000 }), { deadlineMs: 60_000 })));
      for (const report of reports) {
        expect(report).toMatchObject({ lost: 0, duplicated: 0, outOfOrder: 0, ends: 1, endStatus: "completed" });
        expect(report.text).toBe(expected);
      }
    } finally {
      for (const reader of stalled) reader.close();
    }
  }, 120_000);

  it(`${cycles} connect/abort cycles: RSS bounded, Redis clients and open viewers back to baseline`, async () => {
    const session = await signUp(cluster.url, "cycles");
    const conversationId = await createConversation(session);
    const accepted = await sendMessage(session, conversationId, "echo:a short reply to replay many times");
    await createStreamRecorder(session).follow(accepted.taskId);
    const api = cluster.apis[0];
    if (!api) throw new Error("no API");
    const baseline = { clients: await sluiceRedisClients(), viewers: await openViewers(), rss: rssBytes(api.pid) };
    expect(baseline.viewers).toBe(0);
    const streamUrl = `${cluster.url}/api/stream/${accepted.taskId}`;
    let peakRss = baseline.rss;
    for (let done = 0; done < cycles; done += 50) {
      await Promise.all(
        Array.from({ length: 50 }, async (_, index) => {
          const controller = new AbortController();
          // Half abort before the response, half after the first bytes.
          if ((done + index) % 2 === 0) setTimeout(() => controller.abort(), 1);
          try {
            const response = await fetch(streamUrl, { headers: { authorization: `Bearer ${session.token}` }, signal: controller.signal });
            const reader = response.body?.getReader();
            await reader?.read();
            controller.abort();
          } catch {
            // aborted
          }
        }),
      );
      peakRss = Math.max(peakRss, rssBytes(api.pid));
    }
    await until(async () => (await openViewers()) === 0, 20_000, "open viewers to return to 0");
    await until(async () => (await sluiceRedisClients()) <= baseline.clients, 20_000, "Redis clients to return to baseline");
    const figures = { cycles, baseline, peakRss, finalRss: rssBytes(api.pid) };
    console.info(`leak figures: ${JSON.stringify(figures)}`);
    // Bounded: a leak of even 20 KB per cycle would show as 20 MB+ over 1,000 cycles on top of GC noise.
    expect(peakRss - baseline.rss, JSON.stringify(figures)).toBeLessThan(150 * 1024 * 1024);
  }, 240_000);
});
