import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import type { Redis } from "ioredis";

/** One line of CLIENT LIST, the fields the tests read. */
export interface RedisClientEntry {
  name: string;
  /** The client's local TCP port, as Redis sees it (`addr=127.0.0.1:<port>`). */
  port: number;
}

export async function clientList(redis: Redis): Promise<RedisClientEntry[]> {
  const text = (await redis.call("CLIENT", "LIST")) as string;
  return text
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => {
      const fields = new Map(line.trim().split(" ").map((pair) => [pair.slice(0, pair.indexOf("=")), pair.slice(pair.indexOf("=") + 1)] as const));
      const addr = fields.get("addr") ?? "";
      return { name: fields.get("name") ?? "", port: Number(addr.slice(addr.lastIndexOf(":") + 1)) };
    });
}

/**
 * The local ports of the TCP sockets a process holds (Linux /proc): its open
 * file descriptors name socket inodes, and /proc/net/tcp maps inodes to ports.
 * This is how a CLIENT LIST entry is attributed to one process.
 */
export function localTcpPortsOf(pid: number): Set<number> {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (match?.[1]) inodes.add(match[1]);
    } catch {
      // the descriptor closed while we listed it
    }
  }
  const ports = new Set<number>();
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = readFileSync(table, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const columns = line.trim().split(/\s+/);
      const local = columns[1];
      const inode = columns[9];
      if (local && inode && inodes.has(inode)) ports.add(Number.parseInt(local.slice(local.lastIndexOf(":") + 1), 16));
    }
  }
  return ports;
}

/** The names of the Redis connections that belong to process `pid`, e.g. ["sluice-api:subscriber", ...]. */
export async function redisConnectionsOf(redis: Redis, pid: number): Promise<string[]> {
  const ports = localTcpPortsOf(pid);
  return (await clientList(redis)).filter((entry) => ports.has(entry.port)).map((entry) => entry.name).sort();
}
