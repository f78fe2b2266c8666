import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { serveSse, type ServeSseOptions } from "../../../src/streaming/serve-sse.ts";
import type { StreamHub } from "../../../src/streaming/stream-hub.ts";

export interface HubOverHttp {
  baseUrl: string;
  /** Open SSE responses right now. */
  openResponses(): number;
  /** Resolves when every `serveSse` call made so far has returned. */
  idle(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The streaming core's HTTP binding alone, as `serveSse` documents it: every
 * request is served as the stream named by its last path segment, waiting for a
 * log that does not exist yet. No authentication, no task lookup, no API: for
 * tests of the hub and `serveSse` over real sockets with settings the API does
 * not expose (slow-consumer limit, close grace, an instrumented hub). The API's
 * own route is tested by test/streaming/conformance.test.ts.
 */
export async function serveHubOverHttp(hub: StreamHub, options: Partial<ServeSseOptions> = {}): Promise<HubOverHttp> {
  let open = 0;
  const serving = new Set<Promise<void>>();
  const server: Server = createServer((request, response) => {
    const taskId = new URL(request.url ?? "/", "http://localhost").pathname.split("/").at(-1) ?? "";
    open += 1;
    response.once("close", () => (open -= 1));
    const served = serveSse({ heartbeatMs: 15_000, ...options, request, response, hub, taskId, whenMissing: "wait" });
    serving.add(served);
    void served.finally(() => serving.delete(served));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    openResponses: () => open,
    idle: async () => {
      while (serving.size > 0) await Promise.allSettled([...serving]);
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
