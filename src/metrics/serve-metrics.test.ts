import { describe, expect, it } from "vitest";
import { createMetrics } from "./create-metrics.ts";
import { serveMetrics } from "./serve-metrics.ts";

describe("worker metrics endpoint", () => {
  it("serves the registry at GET /metrics and nothing else", async () => {
    const metrics = createMetrics();
    metrics.generations.inc({ status: "completed" });
    const endpoint = await serveMetrics(metrics.registry, "127.0.0.1", 0);
    try {
      const response = await fetch(endpoint.url);
      expect(response.status).toBe(200);
      const body = await response.text();
      expect(body).toContain('sluice_generations_total{status="completed"} 1');
      expect(body).toContain("process_resident_memory_bytes");
      const other = await fetch(endpoint.url.replace("/metrics", "/other"));
      expect(other.status).toBe(404);
      expect(await other.json()).toMatchObject({ error: { code: "ROUTE_NOT_FOUND" } });
    } finally {
      await endpoint.close();
    }
  });
});
