import { createConnection, createServer, type Server, type Socket } from "node:net";

/**
 * What the proxy does with traffic, switchable at run time:
 * - `pass`: forward both ways.
 * - `pause`: stop forwarding and hold every connection open (bytes wait in the
 *   proxy, as on a frozen host); new connections are accepted and held too.
 *   Switching back forwards what was held, in order.
 * - `drop`: reset every connection and refuse new ones (as a dead host or a cut cable).
 * - `delay`: deliver every chunk `delayMs` after it arrived, in order.
 */
export type FaultMode = { kind: "pass" } | { kind: "pause" } | { kind: "drop" } | { kind: "delay"; delayMs: number };

export interface FaultProxy {
  /** Port the proxy listens on (127.0.0.1). */
  readonly port: number;
  /** The target URL with its host and port replaced by the proxy's: `redis://127.0.0.1:<port>` etc. */
  readonly url: string;
  readonly mode: FaultMode;
  setMode(mode: FaultMode): void;
  /** Connections currently open through the proxy (client side). */
  connectionCount(): number;
  /** Connections accepted since start (including refused ones in `drop`). */
  acceptedCount(): number;
  close(): Promise<void>;
}

/** One direction of one connection: chunks waiting for their time (delay) or for the pause to end. */
interface Lane {
  readonly from: Socket;
  readonly to: Socket;
  readonly queue: Array<{ chunk: Buffer; dueAt: number }>;
  timer: NodeJS.Timeout | undefined;
}

/**
 * A loopback TCP proxy that injects network faults between a Sluice process and
 * Redis or PostgreSQL. Point the process at `proxy.url` instead of the server.
 *
 * @example
 * const proxy = await startFaultProxy("redis://127.0.0.1:6379");
 * proxy.setMode({ kind: "pause" });   // the process sees a hung Redis
 * proxy.setMode({ kind: "pass" });    // held bytes flow again
 */
export async function startFaultProxy(targetUrl: string): Promise<FaultProxy> {
  const target = new URL(targetUrl);
  const targetPort = Number(target.port);
  let mode: FaultMode = { kind: "pass" };
  let accepted = 0;
  const pairs = new Set<{ client: Socket; upstream: Socket; lanes: Lane[] }>();

  const pump = (lane: Lane): void => {
    if (lane.timer) {
      clearTimeout(lane.timer);
      lane.timer = undefined;
    }
    if (mode.kind === "pause" || mode.kind === "drop") return;
    const now = Date.now();
    while (lane.queue.length > 0) {
      const head = lane.queue[0];
      if (!head) break;
      if (head.dueAt > now && mode.kind === "delay") {
        lane.timer = setTimeout(() => pump(lane), head.dueAt - now);
        return;
      }
      lane.queue.shift();
      if (!lane.to.destroyed) lane.to.write(head.chunk);
    }
    // Backpressure: read more only when nothing is waiting (a paused proxy holds data in the kernel too).
    if (lane.from.isPaused()) lane.from.resume();
  };

  const server: Server = createServer((client) => {
    accepted += 1;
    client.on("error", () => undefined);
    if (mode.kind === "drop") {
      client.resetAndDestroy();
      return;
    }
    const upstream = createConnection({ host: target.hostname, port: targetPort });
    upstream.on("error", () => undefined);
    const lanes: Lane[] = [
      { from: client, to: upstream, queue: [], timer: undefined },
      { from: upstream, to: client, queue: [], timer: undefined },
    ];
    const pair = { client, upstream, lanes };
    pairs.add(pair);
    for (const lane of lanes) {
      lane.from.on("data", (chunk: Buffer) => {
        const delayMs = mode.kind === "delay" ? mode.delayMs : 0;
        lane.queue.push({ chunk, dueAt: Date.now() + delayMs });
        if (mode.kind === "pause" && lane.queue.length > 64) lane.from.pause();
        pump(lane);
      });
    }
    const teardown = (): void => {
      if (!pairs.delete(pair)) return;
      for (const lane of lanes) if (lane.timer) clearTimeout(lane.timer);
      client.destroy();
      upstream.destroy();
    };
    client.on("close", teardown);
    upstream.on("close", teardown);
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const address = server.address();
  if (!address || typeof address === "string") throw new Error("fault proxy: no address");
  const url = new URL(targetUrl);
  url.hostname = "127.0.0.1";
  url.port = String(address.port);

  return {
    port: address.port,
    url: url.toString().replace(/\/$/, ""),
    get mode() {
      return mode;
    },
    setMode: (next) => {
      mode = next;
      if (next.kind === "drop") {
        for (const pair of [...pairs]) {
          pair.client.resetAndDestroy();
          pair.upstream.resetAndDestroy();
        }
        return;
      }
      for (const pair of pairs) for (const lane of pair.lanes) pump(lane);
    },
    connectionCount: () => pairs.size,
    acceptedCount: () => accepted,
    close: async () => {
      for (const pair of [...pairs]) {
        pair.client.destroy();
        pair.upstream.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
