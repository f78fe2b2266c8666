import { describe, expect, it } from "vitest";
import { oneRunPerTask } from "./one-run-per-task.ts";

function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => { resolve = res; reject = rej; });
  return { promise, resolve, reject };
}

describe("oneRunPerTask", () => {
  it("a second job for a running task joins it instead of starting a second generation", async () => {
    const gate = deferred<string>();
    const starts: string[] = [];
    const runOnce = oneRunPerTask(({ taskId }: { taskId: string }) => {
      starts.push(taskId);
      return gate.promise;
    });
    const first = runOnce({ taskId: "task_a" });
    const second = runOnce({ taskId: "task_a" });
    const other = runOnce({ taskId: "task_b" });
    expect(starts).toEqual(["task_a", "task_b"]);
    gate.resolve("done");
    expect(await first).toEqual({ result: "done", joined: false });
    expect(await second).toEqual({ result: "done", joined: true });
    expect(await other).toEqual({ result: "done", joined: false });
  });

  it("forgets a task once its run settles, also when it fails, so a later job runs again", async () => {
    const failing = deferred<string>();
    let starts = 0;
    const runOnce = oneRunPerTask((_input: { taskId: string }) => {
      starts += 1;
      return starts === 1 ? failing.promise : Promise.resolve("second run");
    });
    const first = runOnce({ taskId: "task_a" });
    const joined = runOnce({ taskId: "task_a" });
    failing.reject(new Error("provider down"));
    await expect(first).rejects.toThrow("provider down");
    await expect(joined).rejects.toThrow("provider down");
    expect(await runOnce({ taskId: "task_a" })).toEqual({ result: "second run", joined: false });
    expect(starts).toBe(2);
  });
});
