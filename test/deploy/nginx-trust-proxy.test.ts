import { existsSync, readFileSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { startSluice, type InProcessSluice } from "../support/sluice/start-sluice.ts";
import { nginxExecutable, shippedNginxConfig, startNginx, type NginxProcess } from "../support/servers/nginx.ts";

// The shipped deploy/nginx.conf in a real nginx, in front of a real API with compose.yaml's
// TRUST_PROXY: clients connect from different loopback addresses (127.0.0.2, 127.0.0.3), as
// different hosts would, and are rate-limited by those addresses, not by nginx's.
const root = join(import.meta.dirname, "..", "..");
const shipped = readFileSync(join(root, "deploy", "nginx.conf"), "utf8");
const compose = parse(readFileSync(join(root, "compose.yaml"), "utf8"), { merge: true }) as { services: Record<string, { environment?: Record<string, string> }> };
const trustProxy = compose.services["api-1"]?.environment?.TRUST_PROXY;

/** POST /api/auth/login from `localAddress`, with extra headers; resolves with the status. */
function loginFrom(baseUrl: string, localAddress: string, headers: Record<string, string> = {}): Promise<number> {
  const body = JSON.stringify({ email: `guess-${Math.random().toString(36).slice(2)}@example.test`, password: "wrong password" });
  return new Promise((resolve, reject) => {
    const outgoing = request(`${baseUrl}/api/auth/login`, { method: "POST", localAddress, headers: { "content-type": "application/json", ...headers } }, (response) => {
      response.resume();
      response.once("end", () => resolve(response.statusCode ?? 0));
    });
    outgoing.once("error", reject);
    outgoing.end(body);
  });
}

describe.skipIf(!existsSync(nginxExecutable))("per-IP limits behind the shipped nginx with compose.yaml's TRUST_PROXY", () => {
  let api: InProcessSluice;
  let nginx: NginxProcess;
  beforeAll(async () => {
    expect(trustProxy, "compose.yaml sets TRUST_PROXY for the APIs").toBeDefined();
    api = await startSluice({ label: "nginx-trust", topology: { apis: 1, workers: 0 }, env: { TRUST_PROXY: trustProxy ?? "", LIMIT_AUTH_PER_MINUTE: "3" } });
    nginx = await startNginx({ upstreamPort: Number(new URL(api.url).port), buildConfig: (paths) => shippedNginxConfig(shipped, paths) });
  });
  afterAll(async () => {
    await nginx?.stop();
    await api?.stop();
  });

  it("limits each client by its own address; a forged X-Forwarded-For changes nothing", async () => {
    for (let index = 0; index < 3; index += 1) expect(await loginFrom(nginx.url, "127.0.0.2")).toBe(401);
    expect(await loginFrom(nginx.url, "127.0.0.2")).toBe(429);
    // Another client behind the same nginx still gets in.
    expect(await loginFrom(nginx.url, "127.0.0.3")).toBe(401);
    // The limited client claiming to be someone else, or a chain of proxies, is still itself.
    for (const forged of ["127.0.0.9", "203.0.113.5, 127.0.0.9", "127.0.0.3"]) {
      expect(await loginFrom(nginx.url, "127.0.0.2", { "x-forwarded-for": forged }), forged).toBe(429);
    }
  });
});
