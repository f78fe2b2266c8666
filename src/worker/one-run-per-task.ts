/**
 * At most one run per task id in this process. After Redis lost its data, the
 * orphan sweeper may re-enqueue a task whose generation is still running here
 * (its job record vanished, its generation did not). BullMQ tracks locks by job
 * id, so two runs of one id would keep taking each other's lock until the job
 * stalls out. The second job instead waits for the running generation and
 * reports its result; runs in other processes are fenced by attempt as usual.
 */
export function oneRunPerTask<I extends { taskId: string }, R>(run: (input: I) => Promise<R>): (input: I) => Promise<{ result: R; joined: boolean }> {
  const running = new Map<string, Promise<R>>();
  return async (input) => {
    const { taskId } = input;
    const current = running.get(taskId);
    if (current) return { result: await current, joined: true };
    const started = run(input);
    running.set(taskId, started);
    try {
      return { result: await started, joined: false };
    } finally {
      running.delete(taskId);
    }
  };
}
