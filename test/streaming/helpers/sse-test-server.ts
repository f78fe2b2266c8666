import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { SluiceError } from "../../../src/errors/catalog.ts";
import { serveSse, writeErrorResponse, type ServeSseOptions } from "../../../src/streaming/serve-sse.ts";
import type { StreamHub } from "../../../src/streaming/stream-hub.ts";

export type TaskState = "running" | "finished";

export interface SseTestServer {
  baseUrl: string;
  /** Tasks the server knows, as the API would from PostgreSQL: anything else is 404. */
  tasks: Map<string, TaskState>;
  token: string;
  /** Open SSE responses right now. */
  openResponses(): number;
  /** Resolves when every `serveSse` call made so far has returned. */
  idle(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The smallest server that mounts `serveSse` the way the API route does
 * (PROTOCOL.md 2): GET /api/stream/:taskId, Bearer or ?token= auth, 404 for an
 * unknown task, 410 for a finished task whose log is gone.
 */
export async function startSseTestServer(hub: StreamHub, options: Partial<ServeSseOptions> = {}): Promise<SseTestServer> {
  const tasks = new Map<string, TaskState>();
  const token = "test-token";
  let open = 0;
  const serving = new Set<Promise<void>>();
  const server: Server = createServer((request, response) => {
    const url = new URL(request.url ?? "/", "http://localhost");
    const match = /^\/api\/stream\/([A-Za-z0-9_-]+)$/.exec(url.pathname);
    if (request.method !== "GET" || !match?.[1]) {
      writeErrorResponse(response, new SluiceError("ROUTE_NOT_FOUND"));
      return;
    }
    const taskId = match[1];
    if (request.headers.authorization !== `Bearer ${token}` && url.searchParams.get("token") !== `${token}:${taskId}`) {
      writeErrorResponse(response, new SluiceError("UNAUTHENTICATED"));
      return;
    }
    const state = tasks.get(taskId);
    if (state === undefined) {
      writeErrorResponse(response, new SluiceError("STREAM_NOT_FOUND"));
      return;
    }
    open += 1;
    response.once("close", () => (open -= 1));
    const served = serveSse({ heartbeatMs: 15_000, ...options, request, response, hub, taskId, whenMissing: state === "running" ? "wait" : "STREAM_EXPIRED" });
    serving.add(served);
    void served.finally(() => serving.delete(served));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    tasks,
    token,
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
