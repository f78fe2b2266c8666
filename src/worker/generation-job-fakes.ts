import pino from "pino";
import type { GenerationJobData } from "../queue/generation-queue.ts";
import type { FinalResult, MessagesRepository, TaskRecord } from "../storage/messages-repository.ts";
import type { GenerationJobDependencies } from "./generation-job.ts";

// Stand-ins shared by the generation job's tests (generation-job*.test.ts, continue-after-crash.test.ts),
// which run the job against a real Redis log; no product code imports this file.

/** The one PostgreSQL row a fake repository holds; tests read and change it directly. */
export interface TaskRow {
  task: TaskRecord;
  /** What `finish` saved, with the attempt that saved it. */
  final?: FinalResult & { attempt: number };
  /** The row was deleted under the generation (its conversation or user went). */
  deleted?: boolean;
}

/** The queued job of the pending row's task. */
export const pendingTaskJob: GenerationJobData = { taskId: "task_1", messageId: "m1", conversationId: "c1", userId: "u1", model: "sim" };

/** A row for task `task_1` (message `m1`) that no attempt has begun. */
export function pendingTaskRow(): TaskRow {
  return { task: { messageId: "m1", conversationId: "c1", userId: "u1", status: "pending", attempt: 0, model: "sim", createdAt: new Date(), updatedAt: new Date() } };
}

/**
 * A messages repository over `row` with the attempt fencing of the real one: `beginAttempt` only
 * upwards and never once final, `finish` only by the owning attempt and only once. `onFinish`
 * runs after a save, before `finish` returns (to lose the log between the save and `end`).
 */
export function fakeMessagesRepository(row: TaskRow, hooks: { onFinish?: (() => Promise<void>) | undefined } = {}): MessagesRepository {
  const repository: Partial<MessagesRepository> = {
    findTask: () => Promise.resolve({ ...row.task }),
    beginAttempt: (_taskId, attempt) => {
      if (row.final || attempt <= row.task.attempt) return Promise.resolve(undefined);
      row.task = { ...row.task, attempt, status: "streaming" };
      return Promise.resolve({ ...row.task, history: [{ role: "user" as const, content: "hi" }], historyTurnsNotLoaded: 0 });
    },
    finish: async (_taskId, attempt, result) => {
      if (row.deleted) return "missing";
      if (row.final) return "already-final";
      if (attempt !== row.task.attempt) return "stale";
      row.final = { ...result, attempt };
      row.task = { ...row.task, status: result.status };
      await hooks.onFinish?.();
      return "saved";
    },
  };
  return repository as MessagesRepository;
}

/** The job's settings these tests keep fixed: never cancelled, silent, every delta appended at once, no retries. */
export const fixedJobSettings: Pick<GenerationJobDependencies, "cancels" | "logger" | "coalesceWindowMs" | "coalesceMaxBytes" | "providerMaxRetries" | "finalSaveRetryMs"> = {
  cancels: { watch: () => () => undefined, isCancelled: () => Promise.resolve(false), ready: Promise.resolve(), close: () => Promise.resolve() },
  logger: pino({ level: "silent" }),
  coalesceWindowMs: 0,
  coalesceMaxBytes: 1024,
  providerMaxRetries: 0,
  finalSaveRetryMs: 0,
};
