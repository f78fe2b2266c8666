import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, onTestFinished, vi } from "vitest";
import { endRun, recordLeftover, registryDirectory, sweepLeftovers } from "./leftovers.ts";

/** A process that runs until it is killed. */
function idleProcess(): ChildProcess {
  const child = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" });
  onTestFinished(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  return child;
}

/** Waits (bounded) until the child has been killed, so a miss fails with the registry's state, not a hang. */
async function expectKilled(child: ChildProcess): Promise<void> {
  await vi.waitFor(() => expect(child.signalCode, `registry: ${registryState()}`).toBe("SIGKILL"), { timeout: 10_000, interval: 20 });
}

function registryState(): string {
  try {
    return readdirSync(registryDirectory).map((name) => `${name}: ${readFileSync(join(registryDirectory, name), "utf8").trim()}`).join("; ");
  } catch {
    return "(none)";
  }
}

/** The PID of a process that has exited: an owner that is gone. */
async function goneOwner(): Promise<number> {
  const child = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
  await once(child, "exit");
  return child.pid!;
}

function asOwner<T>(owner: number, run: () => T): T {
  const previous = process.env.SLUICE_TEST_RUN_OWNER;
  process.env.SLUICE_TEST_RUN_OWNER = String(owner);
  try {
    return run();
  } finally {
    if (previous === undefined) delete process.env.SLUICE_TEST_RUN_OWNER;
    else process.env.SLUICE_TEST_RUN_OWNER = previous;
  }
}

function recordAs(owner: number, leftover: Parameters<typeof recordLeftover>[0]): void {
  asOwner(owner, () => recordLeftover(leftover));
}

describe("test run leftovers", () => {
  it("ends the processes and removes the directories of a run whose owner is gone", async () => {
    const owner = await goneOwner();
    const child = idleProcess();
    const directory = mkdtempSync(join(tmpdir(), "sluice-leftover-"));
    recordAs(owner, { pid: child.pid, directory });
    sweepLeftovers();
    await expectKilled(child);
    expect(existsSync(directory)).toBe(false);
    expect(existsSync(join(registryDirectory, `${owner}.jsonl`))).toBe(false);
  });

  it("at teardown, ends what the run itself recorded that a failed test left running", async () => {
    const child = idleProcess();
    const directory = mkdtempSync(join(tmpdir(), "sluice-leftover-"));
    // This process stands for the run's owner: alive, so only endRun (its own teardown) may end them.
    recordAs(process.pid, { pid: child.pid, directory });
    asOwner(process.pid, () => endRun());
    await expectKilled(child);
    expect(existsSync(directory)).toBe(false);
    expect(existsSync(join(registryDirectory, `${process.pid}.jsonl`))).toBe(false);
  });

  it("leaves a run whose owner is alive alone", () => {
    const child = idleProcess();
    const directory = mkdtempSync(join(tmpdir(), "sluice-leftover-"));
    onTestFinished(() => rmSync(directory, { recursive: true, force: true }));
    recordAs(process.pid, { pid: child.pid, directory });
    onTestFinished(() => rmSync(join(registryDirectory, `${process.pid}.jsonl`), { force: true }));
    sweepLeftovers();
    expect(child.exitCode === null && child.signalCode === null).toBe(true);
    expect(existsSync(directory)).toBe(true);
  });

  it("never ends a process whose PID now belongs to another process (a different start time)", async () => {
    const owner = await goneOwner();
    const child = idleProcess();
    mkdirSync(registryDirectory, { recursive: true });
    appendFileSync(join(registryDirectory, `${owner}.jsonl`), `${JSON.stringify({ pid: child.pid, started: "1" })}\n`);
    sweepLeftovers();
    expect(child.exitCode === null && child.signalCode === null).toBe(true);
    expect(existsSync(join(registryDirectory, `${owner}.jsonl`))).toBe(false);
  });
});
