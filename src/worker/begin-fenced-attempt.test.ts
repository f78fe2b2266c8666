import pino from "pino";
import { describe, expect, it, onTestFinished } from "vitest";
import { connectTestRedis, uniqueKeyPrefix } from "../../test/support/servers/redis.ts";
import type { MessagesRepository } from "../storage/messages-repository.ts";
import { createStreamLog, type StreamLog } from "../streaming/index.ts";
import { beginFencedAttempt } from "./begin-fenced-attempt.ts";
import { fakeMessagesRepository, pendingTaskJob, pendingTaskRow, type TaskRow } from "./generation-job-fakes.ts";

// The begin against a real Redis log; the row is the fake repository's, with the real one's fencing.

const silent = pino({ level: "silent" });

function setup(row: TaskRow, options: { failClaims?: Error; failBegins?: number } = {}) {
  const redis = connectTestRedis();
  const realLog = createStreamLog({ redis, keyPrefix: uniqueKeyPrefix("begin") });
  onTestFinished(() => realLog.remove(pendingTaskJob.taskId));
  /** Claims and begins in the order they were asked for and answered. */
  const order: string[] = [];
  const fake = fakeMessagesRepository(row);
  const messages: MessagesRepository = {
    ...fake,
    beginAttempt: (taskId, attempt, limit) => {
      order.push(`claim ${attempt}`);
      return options.failClaims ? Promise.reject(options.failClaims) : fake.beginAttempt(taskId, attempt, limit);
    },
  };
  const streamLog: StreamLog = {
    ...realLog,
    beginAttempt: async (...args: Parameters<StreamLog["beginAttempt"]>) => {
      order.push("begin");
      if ((options.failBegins ?? 0) > 0) {
        options.failBegins = (options.failBegins ?? 0) - 1;
        throw new Error("connect ECONNREFUSED");
      }
      const started = await realLog.beginAttempt(...args);
      order.push(`begun ${started.attempt}`);
      return started;
    },
  };
  const begin = () => beginFencedAttempt({ streamLog, messages, provider: { continuesReplies: false } }, pendingTaskJob, undefined, silent);
  return { begin, order, realLog };
}

describe("beginning a job's first attempt", () => {
  it("claims attempt 1 in PostgreSQL before the log's begin has answered, and only once", async () => {
    const row = pendingTaskRow();
    const { begin, order } = setup(row);
    const fenced = await begin();
    expect(fenced?.started.attempt).toBe(1);
    expect(fenced?.task).toMatchObject({ attempt: 1, status: "streaming", history: [{ role: "user", content: "hi" }] });
    // Sequential, it would read begin, begun 1, claim 1: a round trip more before the provider call.
    expect(order).toEqual(["claim 1", "begin", "begun 1"]);
  });

  it("claims the begin's attempt when an earlier run already began one in the log", async () => {
    const row = pendingTaskRow();
    const { begin, order, realLog } = setup(row);
    // A run that died between its begin and its claim: the log is at attempt 1, the row unclaimed.
    await realLog.beginAttempt(pendingTaskJob.taskId, { model: "sim" });
    const fenced = await begin();
    expect(fenced?.started.attempt).toBe(2);
    expect(fenced?.task.attempt).toBe(2);
    expect(row.task.attempt).toBe(2);
    expect(order).toEqual(["claim 1", "begin", "begun 2", "claim 2"]);
  });

  it("fails as the claim would when PostgreSQL refuses the early claim of attempt 1", async () => {
    const down = new Error("connection refused");
    const { begin, order } = setup(pendingTaskRow(), { failClaims: down });
    await expect(begin()).rejects.toBe(down);
    expect(order).toEqual(["claim 1", "begin", "begun 1"]);
  });

  it("after Redis refused the begin of a run whose early claim went through, the retry ends with one owner above it", async () => {
    const row = pendingTaskRow();
    const { begin, order, realLog } = setup(row, { failBegins: 1 });
    await expect(begin()).rejects.toThrow("ECONNREFUSED");
    // The early claim moved the row to attempt 1 although no attempt began in the log.
    expect(row.task.attempt).toBe(1);
    const fenced = await begin();
    // The retry's log starts at 1, below the row: it begins again above it (`reset`), as after a
    // Redis restart, and claims that attempt. Nothing was shown yet, so the reset drops nothing.
    expect(fenced?.started.attempt).toBe(2);
    expect(row.task.attempt).toBe(2);
    expect(order).toEqual(["claim 1", "begin", "claim 1", "begin", "begun 1", "begin", "begun 2", "claim 2"]);
    const events = ((await realLog.read(pendingTaskJob.taskId, 0, 100))?.entries ?? []).map((entry) => entry.event.type);
    expect(events).toEqual(["start", "reset"]);
  });
});
