import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { createServer } from "node:net";
import { join } from "node:path";
import { Redis } from "ioredis";
import { describe, expect, inject, it, onTestFinished } from "vitest";
import { startRedisServer } from "./redis-server.ts";
import { isAlive } from "../../test/support/servers/is-alive.ts";

describe("managed redis-server", () => {
  it("starts, serves commands with AOF on, and stops with no orphan process", async () => {
    const directory = mkdtempSync(join(tmpdir(), "sluice-managed-redis-"));
    const server = await startRedisServer({
      executable: inject("redisExecutable"),
      dataDirectory: directory,
      appendOnly: true,
      supervise: true,
    });
    const pid = server.pid();
    expect(pid).toBeTypeOf("number");
    // Its own process group, so a terminal's Ctrl-C reaches only Sluice, which stops it.
    expect(processGroupOf(pid ?? -1)).toBe(pid);
    expect(processGroupOf(pid ?? -1)).not.toBe(processGroupOf(process.pid));
    const client = new Redis(server.url);
    await client.set("k", "v");
    expect(await client.get("k")).toBe("v");
    expect(await client.config("GET", "appendonly")).toEqual(["appendonly", "yes"]);
    client.disconnect();
    await server.stop();
    expect(isAlive(pid ?? -1)).toBe(false);
    const children = execFileSync("ps", ["-o", "pid=", "--ppid", String(process.pid)]).toString();
    expect(children.split("\n").map((line) => line.trim())).not.toContain(String(pid));
    rmSync(directory, { recursive: true, force: true });
  });

  it("restarts a supervised server that was killed, on the same port", async () => {
    const directory = mkdtempSync(join(tmpdir(), "sluice-managed-redis-"));
    const exits: Array<NodeJS.Signals | null> = [];
    const logs: string[] = [];
    const startedAt = performance.now();
    const log = (line: string): void => void logs.push(`+${Math.round(performance.now() - startedAt)} ms ${line}`);
    const server = await startRedisServer({
      executable: inject("redisExecutable"),
      dataDirectory: directory,
      appendOnly: true,
      supervise: true,
      onUnexpectedExit: (_code, signal) => {
        exits.push(signal);
        log(`test: the supervisor saw the exit (${String(signal)})`);
      },
      onLog: log,
    });
    onTestFinished((context) => {
      // What the server, the supervisor, the client and the test did, when the restart is what failed.
      if (context.task.result?.state === "fail") console.log(logs.join("\n"));
    });
    const firstPid = server.pid();
    const client = new Redis(server.url, { maxRetriesPerRequest: null });
    for (const event of ["connect", "ready", "close", "reconnecting", "error", "end"]) client.on(event, (detail: unknown) => log(`test: client ${event} ${event === "error" ? String(detail) : ""}`));
    await client.set("durable", "yes");
    log(`test: SIGKILL to ${String(firstPid)}`);
    process.kill(firstPid ?? -1, "SIGKILL");
    // ioredis reconnects by itself; the command waits for the restarted server.
    expect(await client.get("durable")).toBe("yes");
    log(`test: read back from ${String(server.pid())}`);
    expect(exits).toEqual(["SIGKILL"]);
    expect(server.pid()).not.toBe(firstPid);
    client.disconnect();
    await server.stop();
    log("test: stopped");
    rmSync(directory, { recursive: true, force: true });
  });

  it("keeps restarting a supervised server whose restart fails, until it stays up", async () => {
    const directory = mkdtempSync(join(tmpdir(), "sluice-managed-redis-"));
    let restartFailed = (): void => undefined;
    const failedOnce = new Promise<void>((resolve) => (restartFailed = resolve));
    let died = (): void => undefined;
    const dead = new Promise<void>((resolve) => (died = resolve));
    const server = await startRedisServer({
      executable: inject("redisExecutable"),
      dataDirectory: directory,
      appendOnly: false,
      supervise: true,
      onUnexpectedExit: () => died(),
      onLog: (line) => {
        if (line.includes("restart failed")) restartFailed();
      },
    });
    const client = new Redis(server.url, { maxRetriesPerRequest: null });
    // Its reconnects fail while the port is squatted: expected here, and unheard they print "[ioredis] Unhandled error event".
    client.on("error", () => undefined);
    try {
      await client.set("up", "1");
      // Someone else takes the port the moment the server dies: its restart cannot bind.
      // It hangs up on every connection (the client's reconnects), so it never stands in for Redis.
      const squatter = createServer((socket) => socket.destroy());
      const killed = server.pid();
      process.kill(killed ?? -1, "SIGKILL");
      // The supervisor waits 500 ms after the exit before it restarts: the port is ours by then.
      await dead;
      await new Promise<void>((resolve) => squatter.listen(server.port, "127.0.0.1", resolve));
      await failedOnce;
      await new Promise<void>((resolve) => squatter.close(() => resolve()));
      // The supervisor tries again on its own; the client's command waits for it.
      expect(await client.ping()).toBe("PONG");
      expect(server.pid()).not.toBe(killed);
    } finally {
      client.disconnect();
      await server.stop();
      rmSync(directory, { recursive: true, force: true });
    }
  });

  it("stops a server a killed run left in its data directory, and spares a live one that a stale pid file of another directory names", async () => {
    const directory = mkdtempSync(join(tmpdir(), "sluice-managed-redis-"));
    const other = mkdtempSync(join(tmpdir(), "sluice-managed-redis-"));
    const options = { executable: inject("redisExecutable"), appendOnly: false, supervise: false };
    const live = await startRedisServer({ ...options, dataDirectory: directory });
    const livePid = live.pid() ?? -1;
    let next: Awaited<ReturnType<typeof startRedisServer>> | undefined;
    try {
      // A reused PID: another directory's stale pid file names this live server.
      writeFileSync(join(other, "sluice-redis.pid"), String(livePid));
      next = await startRedisServer({ ...options, dataDirectory: other });
      expect(isAlive(livePid)).toBe(true);
      await next.stop();
      // Its own directory's pid file (a run that died without stopping it): this one is stopped first.
      next = await startRedisServer({ ...options, dataDirectory: directory });
      expect(isAlive(livePid)).toBe(false);
    } finally {
      await next?.stop();
      await live.stop();
      rmSync(directory, { recursive: true, force: true });
      rmSync(other, { recursive: true, force: true });
    }
  });
});

/** Field 5 of /proc/<pid>/stat (after the parenthesised command name). */
function processGroupOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]);
}
