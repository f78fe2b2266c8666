import { describe, expect, it } from "vitest";
import { findFreePort } from "../../src/embedded/free-port.ts";
import { sluiceEnvironment } from "../support/sluice/environment.ts";
import { startSluiceProcess } from "../support/sluice/sluice-process.ts";

// API_METRICS_PORT (docs/operations.md "Metrics"): a real `sluice api` serves Prometheus text on
// the internal port and nothing at /metrics on the public one, which a proxy may expose.
describe("API_METRICS_PORT", () => {
  it("moves GET /metrics off PORT onto its own port", async () => {
    const metricsPort = await findFreePort();
    const api = await startSluiceProcess({
      role: "api",
      env: {
        ...(await sluiceEnvironment("metrics_port")),
        API_METRICS_PORT: String(metricsPort),
      },
    });
    try {
      const internal = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
      expect(internal.status).toBe(200);
      expect(internal.headers.get("content-type")).toMatch(/^text\/plain/);
      expect(await internal.text()).toMatch(/^sluice_stream_viewers /m);
      const publicPort = await fetch(`${api.url}/metrics`);
      expect(publicPort.status).toBe(404);
      expect(await publicPort.json()).toMatchObject({ error: { code: "ROUTE_NOT_FOUND" } });
      // The API itself is where it was.
      expect((await fetch(`${api.url}/healthz`)).status).toBe(200);
    } finally {
      await api.stop();
    }
  });
});
