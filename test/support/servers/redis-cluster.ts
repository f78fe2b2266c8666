import { spawn, execFile, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { expect, vi } from "vitest";
import { recordLeftover } from "./leftovers.ts";

const run = promisify(execFile);

export interface ClusterMaster {
  readonly port: number;
  /** Inclusive slot ranges this master owns (from CLUSTER SHARDS / SLOTS). */
  readonly slotRanges: ReadonlyArray<readonly [number, number]>;
  pid(): number | undefined;
}

export interface RedisClusterRig {
  readonly masters: readonly ClusterMaster[];
  /** `127.0.0.1:A,127.0.0.1:B,...` for REDIS_CLUSTER_NODES. */
  readonly seedList: string;
  /** SIGKILL one master and wait for it to exit. */
  kill(index: number): Promise<void>;
  /** Start a killed master again on the same port and data directory (it reloads nodes.conf and its AOF). */
  restart(index: number): Promise<void>;
  /** Polls until every running master reports cluster_state:ok. */
  waitUntilHealthy(timeoutMs?: number): Promise<void>;
  /** Runs a redis-cli command against one master and returns its stdout. */
  cli(index: number, ...args: string[]): Promise<string>;
  /** Index of the master that owns the key's slot (CLUSTER KEYSLOT, asked of the cluster itself). */
  ownerOf(key: string): Promise<number>;
  stop(): Promise<void>;
}

interface Node {
  port: number;
  directory: string;
  child: ChildProcess | undefined;
}

/**
 * A real local Redis Cluster of `masters` masters and no replicas, each in its own
 * temp directory, with AOF on. `cluster-require-full-coverage no` keeps the live
 * shards serving while a master is down (the setting docs/operations.md asks for).
 */
export async function startRedisCluster(options: { executable: string; masters?: number; nodeTimeoutMs?: number }): Promise<RedisClusterRig> {
  const count = options.masters ?? 3;
  const cliExecutable = join(dirname(options.executable), "redis-cli");
  const nodes: Node[] = [];
  const launch = async (node: Node): Promise<void> => {
    const child = spawn(
      options.executable,
      [
        "--port", String(node.port), "--bind", "127.0.0.1", "--dir", node.directory,
        "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
        "--cluster-node-timeout", String(options.nodeTimeoutMs ?? 1000),
        "--cluster-require-full-coverage", "no",
        "--appendonly", "yes", "--appendfsync", "always", "--save", "",
      ],
      { stdio: "ignore" },
    );
    node.child = child;
    recordLeftover({ pid: child.pid, directory: node.directory });
    await vi.waitFor(async () => expect((await cli(node.port, "PING")).trim(), `redis-server on ${node.port}`).toBe("PONG"), { timeout: 10_000, interval: 50 });
  };
  const cli = async (port: number, ...args: string[]): Promise<string> => (await run(cliExecutable, ["-h", "127.0.0.1", "-p", String(port), ...args])).stdout;
  const stopAll = async (): Promise<void> => {
    await Promise.all(nodes.map((node) => stopChild(node.child)));
    for (const node of nodes) rmSync(node.directory, { recursive: true, force: true });
  };
  try {
    for (let index = 0; index < count; index += 1) {
      const node: Node = { port: await findClusterPort(nodes.map((known) => known.port)), directory: mkdtempSync(join(tmpdir(), "sluice-cluster-")), child: undefined };
      nodes.push(node);
      await launch(node);
    }
    await run(cliExecutable, ["--cluster", "create", ...nodes.map((node) => `127.0.0.1:${node.port}`), "--cluster-replicas", "0", "--cluster-yes"]);
    const waitUntilHealthy = async (timeoutMs = 20_000): Promise<void> => {
      await vi.waitFor(
        async () => {
          const infos = await Promise.all(nodes.filter((node) => node.child?.exitCode === null).map((node) => cli(node.port, "CLUSTER", "INFO").catch(() => "")));
          expect(infos.every((info) => info.includes("cluster_state:ok")), "every running master reports cluster_state:ok").toBe(true);
        },
        { timeout: timeoutMs, interval: 50 },
      );
    };
    await waitUntilHealthy();
    const slots = JSON.parse(await cli(nodes[0]!.port, "--json", "CLUSTER", "SLOTS")) as Array<[number, number, [string, number, ...unknown[]]]>;
    const masters: ClusterMaster[] = nodes.map((node) => ({
      port: node.port,
      slotRanges: slots.filter((range) => range[2][1] === node.port).map((range) => [range[0], range[1]] as const),
      pid: () => node.child?.pid,
    }));
    return {
      masters,
      seedList: nodes.map((node) => `127.0.0.1:${node.port}`).join(","),
      kill: async (index) => {
        const node = nodes[index]!;
        const exited = new Promise((resolve) => node.child?.once("exit", resolve));
        node.child?.kill("SIGKILL");
        await exited;
      },
      restart: async (index) => launch(nodes[index]!),
      waitUntilHealthy,
      cli: (index, ...args) => cli(nodes[index]!.port, ...args),
      ownerOf: async (key) => {
        const slot = Number((await cli(nodes[0]!.port, "CLUSTER", "KEYSLOT", key)).trim());
        const owner = masters.findIndex((master) => master.slotRanges.some(([first, last]) => slot >= first && slot <= last));
        if (owner === -1) throw new Error(`no master owns slot ${slot}`);
        return owner;
      },
      stop: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

async function stopChild(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGKILL");
  await exited;
}

/**
 * A free port whose cluster bus port (+10000) is free as well. Both lie below the kernel's
 * ephemeral range and outside findFreePort's range (src/embedded/free-port.ts), so a master that
 * is killed and restarted finds both still free: no outbound connection or self-connected
 * reconnecting client can take them in between.
 */
async function findClusterPort(taken: readonly number[]): Promise<number> {
  for (let tries = 0; tries < 50; tries += 1) {
    const port = 10_000 + Math.floor(Math.random() * 4_000);
    if (taken.includes(port)) continue;
    if ((await isFree(port)) && (await isFree(port + 10_000))) return port;
  }
  throw new Error("no free port pair for a cluster node");
}

async function isFree(port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

