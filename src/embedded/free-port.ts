import { readFileSync } from "node:fs";
import { createServer } from "node:net";

/**
 * Where free ports are sought: above the usual service ports and the test cluster's ports
 * (10000-13999, bus ports 20000-23999: test/support/servers/redis-cluster.ts), below the kernel's ephemeral range.
 */
const lowestPort = 24_000;
const attempts = 50;

/**
 * Finds a free loopback TCP port below the kernel's ephemeral range. The port is released before
 * it is returned, so a caller that binds it races other processes doing the same; callers that
 * spawn servers retry on a bind failure.
 *
 * Why not the port the kernel picks for `listen(0)`: that port is ephemeral, and a server that is
 * killed and restarted on it (a supervised redis-server, a fault test's API) can find it taken in
 * between by any outbound connection's local port, or by a reconnecting client that connected to
 * itself (TCP simultaneous open). The kernel never hands out ports below the range by itself.
 */
export async function findFreePort(host = "127.0.0.1"): Promise<number> {
  const ephemeralLow = ephemeralRangeStart();
  if (ephemeralLow === undefined || ephemeralLow - lowestPort < 1_000) return await listenOnce(0, host);
  for (let attempt = 0; attempt < attempts; attempt += 1) {
    const candidate = lowestPort + Math.floor(Math.random() * (ephemeralLow - lowestPort));
    try {
      return await listenOnce(candidate, host);
    } catch {
      // Taken: try another.
    }
  }
  return await listenOnce(0, host);
}

/** The first port of `net.ipv4.ip_local_port_range`, or undefined off Linux. */
export function ephemeralRangeStart(): number | undefined {
  try {
    const [low] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/);
    const port = Number(low);
    return Number.isInteger(port) && port > 0 ? port : undefined;
  } catch {
    return undefined;
  }
}

async function listenOnce(port: number, host: string): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen({ port, host, exclusive: true }, () => {
      const address = server.address();
      if (address === null || typeof address === "string") {
        server.close();
        reject(new Error("could not read the bound port"));
        return;
      }
      const bound = address.port;
      server.close(() => resolve(bound));
    });
  });
}
