/**
 * Fault 1: the client's connection drops at a random event or at a random byte
 * inside an event, and the client resumes after 0–3 s with the id of the last
 * complete event (PROTOCOL.md 4.2). Seeded: a failure prints its seed, and
 * SLUICE_CHAOS_SEED=<seed> SLUICE_CHAOS_RUNS=1 replays it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createStreamRecorder, expectCompleteReply, type ReadOptions } from "../support/client/stream-recorder.ts";
import { registerUser } from "../support/client/chat-api.ts";
import { chaosRuns, chaosSeed, echoPrompt, seededRandom } from "../support/chaos.ts";
import { clusterStartTimeoutMs } from "../support/sluice/environment.ts";
import { startSluice, type ProcessSluice } from "../support/sluice/start-sluice.ts";

const runs = chaosRuns(24);
const parallel = Math.min(runs, 16);
let cluster: ProcessSluice;

beforeAll(async () => {
  // ~300 tokens/s (echo splits words into small tokens): a reply streams for about a second, so drops land before, during and after the end.
  cluster = await startSluice({ mode: "processes", env: { SIMULATED_TOKENS_PER_SECOND: "300" }, label: "drop" });
}, clusterStartTimeoutMs);
afterAll(async () => {
  await cluster?.stop();
});

async function oneRun(seed: number): Promise<void> {
  const random = seededRandom(seed);
  const session = await registerUser(cluster.url, "drop");
  const conversationId = (await session.createConversation()).id;
  const { prompt, expected } = echoPrompt(random, 20 + Math.floor(random() * 60));
  const accepted = await session.send(conversationId, prompt);
  const recorder = createStreamRecorder(session);
  const drops = 1 + Math.floor(random() * 3);
  const plan = async (connection: number): Promise<ReadOptions> => {
    if (connection > 0) {
      const pauseMs = Math.floor(random() * 3_000);
      await new Promise((resolve) => setTimeout(resolve, pauseMs));
    }
    if (connection >= drops) return { idleTimeoutMs: 20_000 };
    return random() < 0.5
      ? { abortAfterEvents: 1 + Math.floor(random() * 12), idleTimeoutMs: 20_000 }
      : { abortAfterBytes: 1 + Math.floor(random() * 1_500), idleTimeoutMs: 20_000 };
  };
  const report = await recorder.follow(accepted.taskId, plan, { deadlineMs: 45_000 });
  const saved = ((await session.conversation(conversationId)).messages).filter((message) => message.taskId === accepted.taskId);
  const context = `seed ${seed}: ${JSON.stringify({ ...report, text: undefined })}`;
  expectCompleteReply(report, expected, context);
  expect(saved, context).toHaveLength(1);
  expect(saved[0]?.status, context).toBe("completed");
  expect(saved[0]?.content, context).toBe(expected);
}

describe("client drop and resume", () => {
  it(`${runs} seeded runs: drop at a random event or byte, resume after 0–3 s: nothing lost or repeated`, async () => {
    const base = chaosSeed();
    const seeds = Array.from({ length: runs }, (_, index) => base + index);
    const failures: string[] = [];
    for (let start = 0; start < seeds.length; start += parallel) {
      const batch = seeds.slice(start, start + parallel);
      const results = await Promise.allSettled(batch.map((seed) => oneRun(seed)));
      results.forEach((result, index) => {
        if (result.status === "rejected") failures.push(`seed ${batch[index]}: ${String(result.reason)}`);
      });
    }
    expect(failures).toEqual([]);
  }, 60_000 + runs * 3_000);
});
