import type { Registry } from "prom-client";
import type { App } from "../app-type.ts";

/** Prometheus text at GET /metrics (default process metrics plus Sluice's own; docs/operations.md). */
export function registerMetricsRoute(app: App, registry: Pick<Registry, "metrics" | "contentType">): void {
  app.get("/metrics", { schema: { hide: true } }, async (_request, reply) => {
    const body = await registry.metrics();
    return reply.header("content-type", registry.contentType).send(body);
  });
}
