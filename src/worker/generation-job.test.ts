import { ReplyError as UntypedReplyError } from "ioredis";
import { describe, expect, it, onTestFinished } from "vitest";
import { connectTestRedis, uniqueKeyPrefix } from "../../test/support/servers/redis.ts";
import type { LlmProvider, ProviderEvent } from "../llm/llm-provider.ts";
import { createStreamLog, type StreamLog } from "../streaming/index.ts";
import type { LogEntry } from "../streaming/events.ts";
import { systemClock } from "../time/clock.ts";
import { createGenerationJob } from "./generation-job.ts";
import { fakeMessagesRepository, fixedJobSettings, pendingTaskJob, pendingTaskRow, type TaskRow } from "./generation-job-fakes.ts";

// The job against a real Redis log; PostgreSQL and the provider are small stand-ins that keep
// the attempt fencing of the real repository (beginAttempt only upwards, finish only by the owner).

const ReplyError = UntypedReplyError as new (message: string) => Error;
const oomReply = (): Error => new ReplyError("OOM command not allowed when used memory > 'maxmemory'. script: 0, on @user_script:1.");

/** Yields `chunks`; before the chunk at `pauseAt` it waits for `gate` (once), so a test can act mid-stream. */
function fakeProvider(chunks: string[], pause?: { at: number; gate: Promise<void> }): LlmProvider & { calls: number } {
  const provider = {
    name: "simulated" as const,
    calls: 0,
    async *stream(_request: unknown, signal: AbortSignal): AsyncIterable<ProviderEvent> {
      const call = (provider.calls += 1);
      for (const [index, delta] of chunks.entries()) {
        if (call === 1 && pause && index === pause.at) await pause.gate;
        if (signal.aborted) throw new Error("aborted");
        yield { type: "text-delta", delta };
      }
    },
  };
  return provider;
}

function setup(options: { provider: LlmProvider; row: TaskRow; onFinish?: () => Promise<void>; wrapLog?: (log: StreamLog) => StreamLog }) {
  const redis = connectTestRedis();
  const keyPrefix = uniqueKeyPrefix("job");
  const realLog = createStreamLog({ redis, keyPrefix });
  const streamLog = options.wrapLog ? options.wrapLog(realLog) : realLog;
  const run = createGenerationJob({
    streamLog,
    messages: fakeMessagesRepository(options.row, { onFinish: options.onFinish }),
    provider: options.provider,
    ...fixedJobSettings,
    clock: systemClock,
  });
  const { taskId } = pendingTaskJob;
  // Registered after connectTestRedis's own hook, so it runs first (vitest runs them in reverse).
  onTestFinished(() => realLog.remove(taskId));
  /** What Redis lost in a restart without persistence. */
  const loseLog = (): Promise<void> => realLog.remove(taskId);
  const entries = async (): Promise<LogEntry[]> => (await realLog.read(taskId, 0, 1_000))?.entries ?? [];
  return { run: () => run(pendingTaskJob), loseLog, entries, realLog, keyPrefix };
}

const textOf = (entries: readonly LogEntry[]): string => entries.map((entry) => (entry.event.type === "text-delta" ? entry.event.delta : "")).join("");

describe("generation job when its row is deleted under it", () => {
  it("ends the log cancelled / CONVERSATION_DELETED once, saving nothing, so viewers are not left waiting", async () => {
    let release = (): void => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const row = pendingTaskRow();
    const job = setup({ provider: fakeProvider(["half ", "a reply"], { at: 1, gate }), row });
    const running = job.run();
    for (const deadline = Date.now() + 10_000; textOf(await job.entries()) !== "half "; ) {
      if (Date.now() > deadline) throw new Error("the first chunk never reached the log");
      await new Promise((resolve) => setImmediate(resolve));
    }
    // Deleted in PostgreSQL by hand (a user removed with their conversations): no API call ends the log.
    row.deleted = true;
    release();
    await expect(running).resolves.toBe("done");
    expect(row.final).toBeUndefined();
    const ends = (await job.entries()).filter((entry) => entry.event.type === "end").map((entry) => entry.event);
    expect(ends).toHaveLength(1);
    expect(ends[0]).toMatchObject({ type: "end", status: "cancelled", error: { code: "CONVERSATION_DELETED" } });
  });
});

describe("generation job when Redis loses or refuses the log", () => {
  it("a log lost mid-stream: begins again above the lost attempt, so the recreated log holds reset, the whole reply and one end", async () => {
    let release = (): void => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const provider = fakeProvider(["hello ", "brave ", "new ", "world"], { at: 2, gate });
    const row = pendingTaskRow();
    const job = setup({ provider, row });
    const running = job.run();
    // The first chunks are in the log; then Redis restarts empty.
    for (const deadline = Date.now() + 10_000; textOf(await job.entries()) !== "hello brave "; ) {
      if (Date.now() > deadline) throw new Error("the first chunks never reached the log");
      await new Promise((resolve) => setImmediate(resolve));
    }
    await job.loseLog();
    release();
    await expect(running).resolves.toBe("done");

    expect(provider.calls).toBe(2);
    expect(row.final).toMatchObject({ status: "completed", content: "hello brave new world", attempt: 2 });
    const entries = await job.entries();
    expect(entries[0]?.event).toMatchObject({ type: "reset", attempt: 2 });
    expect(textOf(entries)).toBe("hello brave new world");
    expect(entries.filter((entry) => entry.event.type === "end").map((entry) => entry.event)).toEqual([
      expect.objectContaining({ type: "end", status: "completed", messageId: "m1" }),
    ]);
  });

  it("a log lost between the save and `end`: recreated with reset, the saved text and the end", async () => {
    const row = pendingTaskRow();
    const job = setup({ provider: fakeProvider(["saved ", "reply"]), row, onFinish: () => job.loseLog() });
    await expect(job.run()).resolves.toBe("done");
    const entries = await job.entries();
    expect(entries[0]?.event).toMatchObject({ type: "reset", attempt: 2 });
    expect(textOf(entries)).toBe("saved reply");
    expect(entries.at(-1)?.event).toMatchObject({ type: "end", status: "completed" });
    expect(row.final).toMatchObject({ status: "completed", content: "saved reply", attempt: 1 });
  });

  it("Redis out of memory mid-stream: fails with STORE_FULL, saves only the text the log holds, and retries `end` until Redis takes it", async () => {
    let appends = 0;
    let refusedEnds = 0;
    const row = pendingTaskRow();
    const job = setup({
      provider: fakeProvider(["kept ", "refused ", "never"]),
      row,
      wrapLog: (log) => ({
        ...log,
        append: async (...args: Parameters<StreamLog["append"]>) => {
          appends += 1;
          if (appends > 1) throw oomReply();
          return await log.append(...args);
        },
        end: async (...args: Parameters<StreamLog["end"]>) => {
          if (refusedEnds < 2) {
            refusedEnds += 1;
            throw oomReply();
          }
          return await log.end(...args);
        },
      }),
    });
    await expect(job.run()).resolves.toBe("done");
    expect(refusedEnds).toBe(2);
    expect(row.final).toMatchObject({ status: "failed", content: "kept ", errorCode: "STORE_FULL" });
    const entries = await job.entries();
    expect(textOf(entries)).toBe("kept ");
    expect(entries.at(-1)?.event).toMatchObject({ type: "end", status: "failed", error: { code: "STORE_FULL" } });
  });
});
