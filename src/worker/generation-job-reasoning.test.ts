import { describe, expect, it, onTestFinished } from "vitest";
import { connectTestRedis, uniqueKeyPrefix } from "../../test/support/servers/redis.ts";
import type { LlmProvider, ProviderEvent } from "../llm/llm-provider.ts";
import { createStreamLog } from "../streaming/index.ts";
import { createManualClock } from "../time/manual-clock.ts";
import { createGenerationJob } from "./generation-job.ts";
import { fakeMessagesRepository, fixedJobSettings, pendingTaskJob, pendingTaskRow } from "./generation-job-fakes.ts";

// Reasoning through the job against a real Redis log (PostgreSQL is a stand-in that keeps the
// fencing of the real repository): streamed as its own deltas, saved once with the answer and its
// duration, and replayed with the saved text when the log is lost between the save and `end`.

const events: ProviderEvent[] = [
  { type: "reasoning-delta", delta: "Let me " },
  { type: "reasoning-delta", delta: "think." },
  { type: "text-delta", delta: "The " },
  { type: "text-delta", delta: "answer." },
  { type: "usage", inputTokens: 3, outputTokens: 9 },
  { type: "finish", reason: "stop" },
];

function setup(onFinish?: () => Promise<void>) {
  const redis = connectTestRedis();
  const streamLog = createStreamLog({ redis, keyPrefix: uniqueKeyPrefix("job-reasoning") });
  const clock = createManualClock();
  const row = pendingTaskRow();
  // Each provider event 700 ms after the one before on the job's clock: the reasoning lasts 1400 ms (to the answer's first delta).
  const provider: LlmProvider = {
    name: "simulated",
    async *stream() {
      for (const event of events) {
        clock.advance(700);
        yield await Promise.resolve(event);
      }
    },
  };
  const run = createGenerationJob({
    streamLog,
    messages: fakeMessagesRepository(row, { onFinish }),
    provider,
    ...fixedJobSettings,
    clock,
  });
  const { taskId } = pendingTaskJob;
  onTestFinished(() => streamLog.remove(taskId));
  const loseLog = (): Promise<void> => streamLog.remove(taskId);
  const logged = async () => {
    const entries = (await streamLog.read(taskId, 0, 1_000))?.entries ?? [];
    const part = (type: string) => entries.map(({ event }) => (event.type === type && "delta" in event ? event.delta : "")).join("");
    return { entries, reasoning: part("reasoning-delta"), text: part("text-delta") };
  };
  return { run: () => run(pendingTaskJob), row, loseLog, logged };
}

describe("generation job with reasoning", () => {
  it("streams reasoning as its own deltas before the text and saves both once, with the duration to the answer's first delta", async () => {
    const job = setup();
    await expect(job.run()).resolves.toBe("done");
    const { entries, reasoning, text } = await job.logged();
    expect(reasoning).toBe("Let me think.");
    expect(text).toBe("The answer.");
    const firstText = entries.findIndex(({ event }) => event.type === "text-delta");
    expect(entries.slice(firstText).some(({ event }) => event.type === "reasoning-delta")).toBe(false);
    expect(job.row.final).toMatchObject({ status: "completed", content: "The answer.", reasoning: "Let me think.", reasoningDurationMs: 1400, outputTokens: 9, attempt: 1 });
  });

  it("a log lost between the save and `end` is recreated with reset, the saved reasoning and text, and the end", async () => {
    const job: ReturnType<typeof setup> = setup(() => job.loseLog());
    await expect(job.run()).resolves.toBe("done");
    const { entries, reasoning, text } = await job.logged();
    expect(entries[0]?.event).toMatchObject({ type: "reset", attempt: 2 });
    expect(reasoning).toBe("Let me think.");
    expect(text).toBe("The answer.");
    expect(entries.map(({ event }) => event.type)).toEqual(["reset", "reasoning-delta", "text-delta", "end"]);
    expect(job.row.final).toMatchObject({ status: "completed", content: "The answer.", reasoning: "Let me think.", attempt: 1 });
  });
});
