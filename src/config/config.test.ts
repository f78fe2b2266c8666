import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "./config.ts";

const workingDirectory = mkdtempSync(join(tmpdir(), "sluice-config-"));

function problemsOf(environment: Record<string, string>): readonly string[] {
  try {
    loadConfig(environment, workingDirectory);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error("expected a ConfigError");
}

describe("loadConfig", () => {
  it("gives the documented defaults with an empty environment", () => {
    const config = loadConfig({}, workingDirectory);
    expect(config.http).toEqual({ port: 3000, host: "127.0.0.1", trustProxy: false });
    expect(config.database.url).toBeUndefined();
    expect(config.redis.url).toBeUndefined();
    expect(config.llm.provider).toBe("simulated");
    expect(config.llm.providerReason).toMatch(/no LLM key/);
    expect(config.stream.ttlSeconds).toBe(3600);
    expect(config.worker.concurrency).toBeGreaterThanOrEqual(500);
    expect(config.limits.bodyBytes).toBeLessThanOrEqual(1024 * 1024);
    expect(config.limits.messagesPerMinute).toBeGreaterThanOrEqual(30);
    expect(config.limits.openStreamsPerUser).toBeGreaterThanOrEqual(10);
    expect(config.limits.generationsPerUser).toBeGreaterThanOrEqual(3);
    expect(config.dataDirectory).toBe(join(workingDirectory, ".sluice"));
  });

  it("lists every invalid variable at once", () => {
    const problems = problemsOf({ PORT: "seventy", REDIS_URL: "http://x", LLM_PROVIDER: "gpt", LOG_LEVEL: "loud" });
    expect(problems.map((problem) => problem.split(":")[0]).sort()).toEqual(["LLM_PROVIDER", "LOG_LEVEL", "PORT", "REDIS_URL"]);
  });

  it("takes TRUST_PROXY as a hop count or proxy addresses, never a blanket true", () => {
    expect(loadConfig({ TRUST_PROXY: "1" }, workingDirectory).http.trustProxy).toBe(1);
    expect(loadConfig({ TRUST_PROXY: "10.0.0.0/8, 172.16.0.0/12,loopback,::1" }, workingDirectory).http.trustProxy).toEqual(["10.0.0.0/8", "172.16.0.0/12", "loopback", "::1"]);
    for (const blanket of ["true", "0", "0.0.0.0/0", "::/0", "*", "10.0.0.0/33", "nginx"]) {
      expect(problemsOf({ TRUST_PROXY: blanket }).map((problem) => problem.split(":")[0]), blanket).toEqual(["TRUST_PROXY"]);
    }
  });

  it("rejects a provider without its key", () => {
    expect(problemsOf({ LLM_PROVIDER: "anthropic" })).toEqual(["LLM_PROVIDER=anthropic needs ANTHROPIC_API_KEY"]);
  });

  it("continues crashed replies by default with Anthropic and the simulated model, never against api.openai.com, and takes over a dead worker's job within 10 s", () => {
    const defaults = loadConfig({}, workingDirectory);
    expect(defaults.llm.continueReplies).toEqual({ openai: false, anthropic: true });
    expect(defaults.worker.lockDurationMs + defaults.worker.stalledIntervalMs).toBeLessThanOrEqual(8_000);
    for (const baseUrl of [undefined, "https://api.openai.com/v1"]) {
      const environment = { OPENAI_API_KEY: "sk", OPENAI_CONTINUE_REPLIES: "true", ...(baseUrl ? { OPENAI_BASE_URL: baseUrl } : {}) };
      expect(problemsOf(environment).join("\n"), baseUrl).toMatch(/OPENAI_CONTINUE_REPLIES/);
    }
    expect(loadConfig({ OPENAI_BASE_URL: "http://127.0.0.1:8000/v1", OPENAI_CONTINUE_REPLIES: "true" }, workingDirectory).llm.continueReplies.openai).toBe(true);
  });

  it("picks the provider whose key is set and keeps the default model in the allow-list", () => {
    const config = loadConfig({ OPENAI_API_KEY: "sk-test", LLM_MODELS: "a, b" }, workingDirectory);
    expect(config.llm.provider).toBe("openai");
    expect(config.llm.allowedModels).toEqual(["gpt-4o-mini", "a", "b"]);
  });

  it("is frozen", () => {
    const config = loadConfig({}, workingDirectory);
    expect(Object.isFrozen(config.limits)).toBe(true);
    expect(() => {
      (config.http as { port: number }).port = 1;
    }).toThrow(TypeError);
  });

  it("persists the embedded auth secret so tokens survive restarts", () => {
    const directory = mkdtempSync(join(tmpdir(), "sluice-secret-"));
    const first = loadConfig({ DATA_DIR: directory }, workingDirectory);
    const second = loadConfig({ DATA_DIR: directory }, workingDirectory);
    expect(second.auth.secret).toBe(first.auth.secret);
    expect(readFileSync(join(directory, "auth-secret"), "utf8")).toBe(first.auth.secret);
  });
});
