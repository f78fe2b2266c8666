import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../config/config.ts";
import { createLogger } from "../../logging/create-logger.ts";
import type { App } from "../app-type.ts";
import { buildApp } from "../build-app.ts";
import { registerDocs } from "../docs/register-docs.ts";
import { registerWebUi } from "./register-web-ui.ts";

// The headers a browser gets with the chat UI and with API answers (README "Security headers").
let app: App;
let distDirectory: string;
beforeAll(async () => {
  distDirectory = mkdtempSync(join(tmpdir(), "sluice-web-dist-"));
  writeFileSync(join(distDirectory, "index.html"), '<!doctype html><script type="module" src="/assets/index.js"></script>');
  writeFileSync(join(distDirectory, "app.js"), "export {};");
  const config = loadConfig({ AUTH_SECRET: "s".repeat(32), DATA_DIR: distDirectory }, "/");
  app = await buildApp(config, {
    logger: createLogger({ level: "silent" }),
    readinessProbes: [],
    features: [
      registerDocs,
      async (application) => {
        await registerWebUi(application, distDirectory);
      },
    ],
  });
});
afterAll(async () => {
  await app.close();
  rmSync(distDirectory, { recursive: true, force: true });
});

const expectedPolicy = [
  "default-src 'self'",
  "script-src 'self'",
  "script-src-attr 'none'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join(";");

describe("security headers", () => {
  it.each(["/", "/c/some-conversation", "/app.js", "/api/does-not-exist", "/healthz"])("are on %s", async (url) => {
    const response = await app.inject({ method: "GET", url });
    expect(response.statusCode, url).toBeLessThan(500);
    expect(response.headers["content-security-policy"]).toBe(expectedPolicy);
    expect(response.headers["x-content-type-options"]).toBe("nosniff");
    expect(response.headers["referrer-policy"]).toBe("no-referrer");
    expect(response.headers["x-frame-options"]).toBe("DENY");
    // HSTS belongs to the TLS-terminating proxy; plain-HTTP Sluice must not pin a scheme.
    expect(response.headers["strict-transport-security"]).toBeUndefined();
  });

  it("let only the API docs page (Swagger UI, no user text) apply inline styles", async () => {
    for (const url of ["/api/docs", "/api/docs/static/index.html", "/api/docs/json"]) {
      const response = await app.inject({ method: "GET", url });
      expect(response.statusCode, url).toBeLessThan(400);
      expect(response.headers["content-security-policy"], url).toBe(expectedPolicy.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'"));
    }
    const lookalike = await app.inject({ method: "GET", url: "/api/docsfoo" });
    expect(lookalike.headers["content-security-policy"]).toBe(expectedPolicy);
  });

  it("allow no inline script or style and no image from another origin", () => {
    const directives = new Map(expectedPolicy.split(";").map((directive) => [directive.split(" ")[0], directive.split(" ").slice(1)] as const));
    expect(directives.get("script-src")).not.toContain("'unsafe-inline'");
    expect(directives.get("style-src")).not.toContain("'unsafe-inline'");
    expect(directives.get("img-src")).toEqual(["'self'", "data:"]);
    // It would send the UI's own assets to https:// on a plain-HTTP deployment.
    expect(directives.has("upgrade-insecure-requests")).toBe(false);
  });
});
