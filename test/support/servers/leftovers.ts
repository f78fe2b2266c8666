import { appendFileSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * What a test run leaves behind when it is stopped before its teardown (SIGTERM, Ctrl-C twice,
 * SIGKILL, a crash): the servers and Sluice processes it started, which keep their ports, and
 * their directories. Each start is recorded under the process that owns the run; a later run's
 * global setup (and teardown) ends the recorded processes of owners that are gone, by PID, once
 * it has checked that the PID is still the process recorded (its start time), and removes the
 * recorded directories. A run whose owner is alive is never touched, so runs side by side are safe.
 */
export const registryDirectory = join(tmpdir(), "sluice-test-runs");

/** The owner of this run: the vitest main process (global setup names it), else this process. */
const ownerPid = (): number => Number(process.env.SLUICE_TEST_RUN_OWNER ?? process.pid);

export interface Leftover {
  pid?: number | undefined;
  directory?: string | undefined;
}

/** Records a process (and/or directory) this run started; cheap enough to call on every (re)start. */
export function recordLeftover(leftover: Leftover): void {
  const entry = { ...leftover, started: leftover.pid === undefined ? undefined : startTimeOf(leftover.pid) };
  mkdirSync(registryDirectory, { recursive: true });
  // One short line per append: O_APPEND keeps lines from several processes whole.
  appendFileSync(join(registryDirectory, `${ownerPid()}.jsonl`), `${JSON.stringify(entry)}\n`);
}

/** Makes this process the owner of the run (global setup, before any test process starts). */
export function becomeRunOwner(): void {
  process.env.SLUICE_TEST_RUN_OWNER = String(process.pid);
}

/**
 * Teardown, once the run's servers are stopped: whatever the run recorded that still runs was leaked
 * by a test that failed before its own cleanup, and is ended; then so is what runs that are gone left.
 */
export function endRun(): number {
  return endRecorded(join(registryDirectory, `${ownerPid()}.jsonl`)) + sweepLeftovers();
}

/** Ends what runs that are gone left behind. Returns how many processes it ended. */
export function sweepLeftovers(): number {
  let ended = 0;
  let files: string[];
  try {
    files = readdirSync(registryDirectory).filter((name) => /^\d+\.jsonl$/.test(name));
  } catch {
    return 0;
  }
  for (const file of files) {
    const owner = Number(file.slice(0, -".jsonl".length));
    if (!isAlive(owner)) ended += endRecorded(join(registryDirectory, file));
  }
  return ended;
}

/** Ends the processes a record file lists (those still the same processes), removes its directories, then the file. */
function endRecorded(path: string): number {
  let ended = 0;
  let lines: string[];
  try {
    lines = readFileSync(path, "utf8").split("\n");
  } catch {
    return 0;
  }
  for (const line of lines) {
    if (line === "") continue;
    const entry = JSON.parse(line) as Leftover & { started?: string };
    if (entry.pid !== undefined && entry.started !== undefined && startTimeOf(entry.pid) === entry.started) {
      try {
        process.kill(entry.pid, "SIGKILL");
        ended += 1;
      } catch {
        // Gone meanwhile.
      }
    }
    if (entry.directory !== undefined) rmSync(entry.directory, { recursive: true, force: true });
  }
  rmSync(path, { force: true });
  return ended;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The process's start time in clock ticks since boot (/proc/<pid>/stat field 22): a PID reused later has another. */
function startTimeOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces and parentheses: count fields after its last ')'.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}
