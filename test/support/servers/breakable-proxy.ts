import { createConnection, createServer, type Socket } from "node:net";
import { findFreePort } from "../../../src/embedded/free-port.ts";

export interface BreakableProxy {
  /** Origin the browser should use, e.g. http://127.0.0.1:41235 */
  readonly url: string;
  /** Cuts every open connection (as a dropped network does) and refuses new ones until restore(). */
  cut(): void;
  restore(): void;
  close(): Promise<void>;
}

/**
 * A loopback TCP proxy in front of Sluice that can break the network. Chromium's
 * offline emulation leaves an open EventSource response flowing, so it cannot
 * stand in for a real outage; resetting the sockets can.
 */
export async function startBreakableProxy(targetUrl: string): Promise<BreakableProxy> {
  const target = new URL(targetUrl);
  const sockets = new Set<Socket>();
  let broken = false;
  const server = createServer((client) => {
    if (broken) {
      client.resetAndDestroy();
      return;
    }
    const upstream = createConnection({ host: target.hostname, port: Number(target.port) });
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
      socket.on("error", () => undefined);
    }
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
  });
  const port = await findFreePort();
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${port}`,
    cut: () => {
      broken = true;
      for (const socket of sockets) socket.resetAndDestroy();
    },
    restore: () => {
      broken = false;
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
