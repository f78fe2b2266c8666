import { existsSync, readFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { nginxExecutable, shippedNginxConfig, startNginx, type NginxProcess } from "../support/servers/nginx.ts";

// The shipped deploy/nginx.conf in a real nginx (docs/operations.md section 6): what it must keep
// from the public. The upstream stands in for an API process and records what reached it.
const shipped = readFileSync(join(import.meta.dirname, "..", "..", "deploy", "nginx.conf"), "utf8");

describe.skipIf(!existsSync(nginxExecutable))("deploy/nginx.conf", () => {
  const reachedUpstream: string[] = [];
  const upstream = createServer((request, response) => {
    reachedUpstream.push(request.url ?? "");
    response.writeHead(200, { "content-type": "text/plain" }).end(`upstream ${request.url ?? ""}`);
  });
  let nginx: NginxProcess;
  beforeAll(async () => {
    await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
    const upstreamPort = (upstream.address() as AddressInfo).port;
    nginx = await startNginx({ upstreamPort, buildConfig: (paths) => shippedNginxConfig(shipped, paths) });
  });
  afterAll(async () => {
    await nginx?.stop();
    await new Promise((resolve) => upstream.close(resolve));
  });

  it.each(["/metrics", "/metrics/", "/metrics?format=text", "//metrics", "/%6Detrics", "/metrics%2F"])("answers %s itself with 404 and the error shape, never from an API", async (path) => {
    const response = await fetch(`${nginx.url}${path}`);
    expect(response.status, path).toBe(404);
    expect(await response.json()).toEqual({ error: { code: "ROUTE_NOT_FOUND", message: "Not found." } });
    expect(reachedUpstream.filter((url) => decodeURIComponent(url).includes("metrics"))).toEqual([]);
  });

  it("still proxies health checks and the API", async () => {
    for (const path of ["/healthz", "/readyz", "/api/conversations", "/api/metrics-like-name"]) {
      const response = await fetch(`${nginx.url}${path}`);
      expect(response.status, path).toBe(200);
      expect(await response.text()).toBe(`upstream ${path}`);
    }
  });

  it("writes the path of a stream URL to its access log, never its query string (the read token)", async () => {
    const token = `v1.SECRET-READ-TOKEN-${Date.now()}`;
    const response = await fetch(`${nginx.url}/api/stream/task-123?token=${token}&x=1`, { headers: { "user-agent": "nginx-config-test" } });
    expect(response.status).toBe(200);
    await response.text();
    // nginx writes the line when the request is finalized; poll the file with a deadline.
    const deadline = Date.now() + 10_000;
    let log = await nginx.accessLog();
    while (!log.includes("/api/stream/task-123") && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      log = await nginx.accessLog();
    }
    const line = log.split("\n").find((candidate) => candidate.includes("/api/stream/task-123"));
    expect(line).toMatch(/"GET \/api\/stream\/task-123 HTTP\/1\.1" 200 \d+ "nginx-config-test"/);
    expect(log).not.toContain("SECRET-READ-TOKEN");
    expect(log).not.toContain("token=");
  });
});
