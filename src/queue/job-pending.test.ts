import { Worker } from "bullmq";
import { describe, expect, it } from "vitest";
import { connectTestRedis, uniqueKeyPrefix } from "../../test/support/servers/redis.ts";
import { createGenerationQueue, enqueueGeneration, generationQueueName, queuePrefix } from "./generation-queue.ts";
import { isJobPending } from "./job-pending.ts";

describe("isJobPending", () => {
  it("is true while the job waits, false once it finished or is gone, false for an unknown task", async () => {
    const keyPrefix = uniqueKeyPrefix("job-pending");
    const redis = connectTestRedis();
    const queue = createGenerationQueue(connectTestRedis(), keyPrefix);
    const data = (taskId: string) => ({ taskId, messageId: "m", conversationId: "c", userId: "u", model: "simulated" });
    try {
      await enqueueGeneration(queue, data("task_waiting"));
      await enqueueGeneration(queue, data("task_removed"));
      expect(await isJobPending(queue, redis, "task_waiting")).toBe(true);
      expect(await isJobPending(queue, redis, "task_unknown")).toBe(false);
      await queue.remove("task_removed");
      expect(await isJobPending(queue, redis, "task_removed")).toBe(false);

      const completed = new Promise<void>((resolve) => {
        const worker = new Worker(generationQueueName, () => Promise.resolve(), { connection: connectTestRedis(), prefix: queuePrefix(keyPrefix) });
        worker.on("completed", () => void worker.close().then(resolve));
      });
      await completed;
      expect(await isJobPending(queue, redis, "task_waiting")).toBe(false);
    } finally {
      await queue.close();
    }
  });
});
