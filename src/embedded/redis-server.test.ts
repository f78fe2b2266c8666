import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { describe, expect, inject, it } from "vitest";
import { startRedisServer } from "./redis-server.ts";
import { isAlive } from "../../test/helpers/processes.ts";

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
    const server = await startRedisServer({
      executable: inject("redisExecutable"),
      dataDirectory: directory,
      appendOnly: true,
      supervise: true,
      onUnexpectedExit: (_code, signal) => exits.push(signal),
    });
    const firstPid = server.pid();
    const client = new Redis(server.url, { maxRetriesPerRequest: null });
    await client.set("durable", "yes");
    process.kill(firstPid ?? -1, "SIGKILL");
    // ioredis reconnects by itself; the command waits for the restarted server.
    expect(await client.get("durable")).toBe("yes");
    expect(exits).toEqual(["SIGKILL"]);
    expect(server.pid()).not.toBe(firstPid);
    client.disconnect();
    await server.stop();
    rmSync(directory, { recursive: true, force: true });
  });
});
