import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { envSchema } from "../../src/config/env-schema.ts";
import { createMetrics } from "../../src/metrics/create-metrics.ts";

// Docker cannot run on the development machine, so the deployment files are checked by
// parsing them (docs/operations.md, "How these files are checked").
const root = join(import.meta.dirname, "..", "..");
const read = (path: string): string => readFileSync(join(root, path), "utf8");
const nginxExecutable = "/usr/sbin/nginx";

interface ComposeService {
  image?: string;
  build?: string;
  command?: string[];
  environment?: Record<string, string>;
  healthcheck?: { test?: string[]; disable?: boolean };
  depends_on?: Record<string, { condition: string }>;
  volumes?: string[];
}
const compose = parse(read("compose.yaml"), { merge: true }) as { services: Record<string, ComposeService> };
const services = compose.services;
const sluiceServices = ["migrate", "api-1", "api-2", "worker-1", "worker-2"];

describe("compose.yaml", () => {
  it("has Redis, PostgreSQL, a migration step, two APIs, two workers and nginx", () => {
    expect(Object.keys(services).sort()).toEqual(["api-1", "api-2", "migrate", "nginx", "postgres", "redis", "worker-1", "worker-2"]);
    expect(services["api-1"]?.command).toEqual(["api"]);
    expect(services["api-2"]?.command).toEqual(["api"]);
    expect(services["worker-1"]?.command).toEqual(["worker"]);
    expect(services["worker-2"]?.command).toEqual(["worker"]);
    expect(services.migrate?.command).toEqual(["migrate"]);
    for (const name of sluiceServices) expect(services[name]?.build, name).toBe(".");
  });

  it("runs Redis with AOF, noeviction, a memory limit and a pub/sub output buffer limit", () => {
    const command = (services.redis?.command ?? []).join(" ");
    expect(command).toMatch(/--appendonly yes/);
    expect(command).toMatch(/--maxmemory-policy noeviction/);
    expect(command).toMatch(/--maxmemory \d+[kmg]b/);
    expect(command).toMatch(/--client-output-buffer-limit pubsub \d+mb \d+mb \d+/);
    expect(services.redis?.volumes?.some((volume) => volume.endsWith(":/data"))).toBe(true);
  });

  it("gives every process the same DATABASE_URL, REDIS_URL, REDIS_KEY_PREFIX and AUTH_SECRET, and only variables Sluice knows", () => {
    const known = new Set(Object.keys(envSchema.shape));
    const first = services["api-1"]?.environment ?? {};
    for (const name of sluiceServices) {
      const environment = services[name]?.environment ?? {};
      for (const key of ["DATABASE_URL", "REDIS_URL", "REDIS_KEY_PREFIX", "AUTH_SECRET"]) {
        expect(environment[key], `${name} ${key}`).toBeDefined();
        expect(environment[key], `${name} ${key}`).toBe(first[key]);
      }
      for (const key of Object.keys(environment)) expect(known.has(key), `${name}: unknown variable ${key}`).toBe(true);
      // Reachable from nginx: not the loopback default.
      expect(environment.HOST).toBe("0.0.0.0");
    }
    expect(first.DATABASE_URL).toMatch(/^postgres:\/\/[^@]+@postgres:5432\//);
    expect(first.REDIS_URL).toBe("redis://redis:6379");
    expect(first.AUTH_SECRET).toMatch(/^\$\{AUTH_SECRET:\?/);
  });

  it("has healthchecks: /readyz on the APIs, PING on Redis, pg_isready on PostgreSQL, /healthz through nginx; none on workers", () => {
    expect(services["api-1"]?.healthcheck?.test?.join(" ")).toContain("/readyz");
    expect(services["api-2"]?.healthcheck?.test?.join(" ")).toContain("/readyz");
    expect(services.redis?.healthcheck?.test).toEqual(["CMD", "redis-cli", "ping"]);
    expect(services.postgres?.healthcheck?.test?.join(" ")).toContain("pg_isready");
    expect(services.nginx?.healthcheck?.test?.join(" ")).toContain("/healthz");
    expect(services["worker-1"]?.healthcheck?.disable).toBe(true);
  });

  it("starts APIs and workers after the migration and Redis, and nginx after healthy APIs, with deploy/nginx.conf", () => {
    for (const name of ["api-1", "api-2", "worker-1", "worker-2"]) {
      expect(services[name]?.depends_on?.migrate?.condition, name).toBe("service_completed_successfully");
      expect(services[name]?.depends_on?.redis?.condition, name).toBe("service_healthy");
    }
    expect(services.migrate?.depends_on?.postgres?.condition).toBe("service_healthy");
    expect(services.nginx?.depends_on?.["api-1"]?.condition).toBe("service_healthy");
    expect(services.nginx?.volumes).toContain("./deploy/nginx.conf:/etc/nginx/nginx.conf:ro");
  });
});

describe("Dockerfile", () => {
  const dockerfile = read("Dockerfile");
  const stages = dockerfile.split(/^FROM /m).slice(1);
  const runtime = stages.at(-1) ?? "";

  it("is multi-stage on Node 24: the build stage builds web/dist, the runtime stage copies it and src/ as is", () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    for (const stage of stages) expect(stage).toMatch(/^node:24-slim\b/);
    expect(stages[0]).toMatch(/^RUN npm ci\b/m);
    expect(stages[0]).toMatch(/^RUN npm run build:web$/m);
    expect(runtime).toMatch(/^COPY --from=build \/app\/web\/dist \.\/web\/dist$/m);
    expect(runtime).toMatch(/^COPY src \.\/src$/m);
  });

  it("installs only production dependencies in the runtime stage and runs as a non-root user", () => {
    expect(runtime).toMatch(/^RUN npm ci --omit=dev\b/m);
    const user = /^USER (\S+)$/m.exec(runtime)?.[1];
    expect(user).toBeDefined();
    expect(["root", "0"]).not.toContain(user);
  });

  it("checks /readyz and starts the CLI with exec-form node (PID 1 receives SIGTERM)", () => {
    expect(runtime).toMatch(/^HEALTHCHECK [\s\S]*\/readyz/m);
    expect(runtime).toMatch(/^ENTRYPOINT \["node", "src\/main\/cli\.ts"\]$/m);
    expect(existsSync(join(root, "src", "main", "cli.ts"))).toBe(true);
  });

  it("has a .dockerignore that keeps node_modules, .git and env files out of the build context", () => {
    const ignored = read(".dockerignore").split("\n").map((line) => line.trim());
    for (const entry of ["node_modules", ".git", ".env", "web/dist"]) expect(ignored).toContain(entry);
  });
});

describe("deploy/nginx.conf", () => {
  const config = read("deploy/nginx.conf");
  const streamBlock = /location \/api\/stream\/ \{([^}]*)\}/.exec(config)?.[1] ?? "";

  it("streams SSE unbuffered and ungzipped with a long read timeout, over HTTP/1.1 keep-alive to both APIs", () => {
    expect(streamBlock).toMatch(/proxy_buffering off;/);
    expect(streamBlock).toMatch(/gzip off;/);
    const timeout = /proxy_read_timeout (\d+)([smh]);/.exec(streamBlock);
    const seconds = Number(timeout?.[1]) * ({ s: 1, m: 60, h: 3600 } as Record<string, number>)[timeout?.[2] ?? "s"]!;
    // Far above HEARTBEAT_INTERVAL_MS (15 s by default).
    expect(seconds).toBeGreaterThanOrEqual(300);
    expect(config).toMatch(/proxy_http_version 1\.1;/);
    expect(config).toMatch(/proxy_set_header Connection "";/);
    expect(config).toMatch(/upstream sluice_api \{[^}]*keepalive \d+;/);
    expect(config).toMatch(/server api-1:3000\b/);
    expect(config).toMatch(/server api-2:3000\b/);
  });

  it.skipIf(!existsSync(nginxExecutable))("passes `nginx -t` (skipped when /usr/sbin/nginx is absent: scripts/ensure-system-packages.sh installs it)", () => {
    const directory = mkdtempSync(join(tmpdir(), "sluice-nginx-"));
    try {
      // api-1/api-2 resolve only inside the compose network; nginx -t resolves upstream names, so
      // they are replaced by loopback addresses here. Nothing else in the file changes.
      writeFileSync(join(directory, "nginx.conf"), config.replace("api-1:3000", "127.0.0.1:3001").replace("api-2:3000", "127.0.0.1:3002"));
      execFileSync(nginxExecutable, ["-t", "-p", directory, "-c", join(directory, "nginx.conf"), "-g", `pid ${join(directory, "nginx.pid")};`], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"],
      });
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });
});

describe("deploy/grafana-dashboard.json", () => {
  const dashboard = JSON.parse(read("deploy/grafana-dashboard.json")) as { panels: Array<{ title: string; targets: Array<{ expr: string }> }> };

  it("queries only metrics that Sluice registers", async () => {
    const metrics = createMetrics();
    metrics.addScrapeSources({});
    const registered = new Map((await metrics.registry.getMetricsAsJSON()).map((metric) => [metric.name, String(metric.type)]));
    const referenced = new Set<string>();
    for (const panel of dashboard.panels) {
      expect(panel.targets.length, panel.title).toBeGreaterThan(0);
      for (const target of panel.targets) {
        // Without grouping clauses and label matchers, metric names are the identifiers followed by `{`, `[` or `)`.
        const bare = target.expr.replace(/\b(by|without)\s*\([^)]*\)/g, "").replace(/\{[^}]*\}/g, "{}");
        for (const match of bare.matchAll(/\b([a-z_][a-z0-9_]*)\s*(?=[{[)])/g)) referenced.add(match[1] ?? "");
      }
    }
    expect(referenced.size).toBeGreaterThan(10);
    for (const name of referenced) {
      const base = name.replace(/_(bucket|sum|count)$/, "");
      const known = registered.has(name) || (base !== name && registered.get(base) === "histogram");
      expect(known, `${name} is not in the registry`).toBe(true);
    }
    // Every Sluice metric is on the dashboard.
    for (const name of registered.keys()) {
      if (!name.startsWith("sluice_")) continue;
      expect([...referenced].some((reference) => reference === name || reference === `${name}_bucket`), `${name} has no panel`).toBe(true);
    }
  });
});
