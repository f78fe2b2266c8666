import { createServer, type Server } from "node:http";
import type { Registry } from "prom-client";

/**
 * A minimal HTTP endpoint for processes without the API (`sluice worker`):
 * GET /metrics answers the registry in Prometheus text; GET /readyz answers 200
 * once `isReady()` (the worker takes jobs), 503 before; everything else 404.
 */
export async function serveMetrics(registry: Pick<Registry, "metrics" | "contentType">, host: string, port: number, isReady: () => boolean = () => true): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((request, response) => {
    if (request.method === "GET" && request.url?.split("?")[0] === "/readyz") {
      const ready = isReady();
      response.writeHead(ready ? 200 : 503, { "content-type": "application/json", "cache-control": "no-store" }).end(JSON.stringify({ status: ready ? "ready" : "starting" }));
      return;
    }
    if (request.method !== "GET" || request.url?.split("?")[0] !== "/metrics") {
      response.writeHead(404, { "content-type": "application/json" }).end('{"error":{"code":"ROUTE_NOT_FOUND","message":"Only GET /metrics is served here."}}');
      return;
    }
    registry.metrics().then(
      (body) => response.writeHead(200, { "content-type": registry.contentType }).end(body),
      () => response.writeHead(500).end(),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  const boundPort = typeof address === "object" && address ? address.port : port;
  return {
    url: `http://${host}:${boundPort}/metrics`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
