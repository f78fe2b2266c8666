import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it, onTestFinished } from "vitest";
import { ConfigError, loadConfig } from "./config.ts";

const workingDirectory = mkdtempSync(join(tmpdir(), "sluice-config-"));
afterAll(() => rmSync(workingDirectory, { recursive: true, force: true }));

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
    expect(config.http).toEqual({ port: 3000, host: "127.0.0.1", listenBacklog: 4096, trustProxy: false });
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
    const problems = problemsOf({ PORT: "seventy", HTTP_LISTEN_BACKLOG: "0", REDIS_URL: "http://x", LLM_PROVIDER: "gpt", LOG_LEVEL: "loud" });
    expect(problems.map((problem) => problem.split(":")[0]).sort()).toEqual(["HTTP_LISTEN_BACKLOG", "LLM_PROVIDER", "LOG_LEVEL", "PORT", "REDIS_URL"]);
  });

  it("takes REDIS_URL as redis://, rediss://, a unix socket's absolute path, or a cluster's seeds", () => {
    expect(loadConfig({ REDIS_URL: "unix:///run/redis/redis.sock?password=p" }, workingDirectory).redis.url).toBe("unix:///run/redis/redis.sock?password=p");
    for (const bad of ["unix://relative.sock", "unix:///", "unix:///a b.sock", "redis+unix:///x.sock"]) {
      expect(problemsOf({ REDIS_URL: bad }).map((problem) => problem.split(":")[0]), bad).toEqual(["REDIS_URL"]);
    }
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

  it("reaches the provider over HTTP/1.1 unless PROVIDER_HTTP2 says otherwise", () => {
    expect(loadConfig({}, workingDirectory).llm.http2).toBe(false);
    expect(loadConfig({ PROVIDER_HTTP2: "true" }, workingDirectory).llm.http2).toBe(true);
    expect(problemsOf({ PROVIDER_HTTP2: "yes please" }).join("\n")).toMatch(/PROVIDER_HTTP2/);
  });

  it("picks the provider whose key is set and keeps the default model in the allow-list", () => {
    const config = loadConfig({ OPENAI_API_KEY: "sk-test", LLM_MODELS: "a, b" }, workingDirectory);
    expect(config.llm.provider).toBe("openai");
    expect(config.llm.allowedModels).toEqual(["gpt-4o-mini", "a", "b"]);
  });

  it("gives each model its context budget, keeps the reply's tokens (and Anthropic's thinking) free of it, and refuses budgets that leave no room or name an unknown model", () => {
    expect(loadConfig({}, workingDirectory).context).toEqual({ defaultBudgetTokens: 64_000, budgetByModel: new Map(), replyTokens: 4096, reservedOutputTokens: 4096 });
    const local = loadConfig({ OPENAI_BASE_URL: "http://127.0.0.1:8080/v1", LLM_MODEL: "llama3.1:8b", LLM_MODELS: "org/model=v2", CONTEXT_BUDGET_BY_MODEL: "llama3.1:8b=8192, org/model=v2=32000", CONTEXT_REPLY_TOKENS: "1024" }, workingDirectory);
    expect(local.context).toMatchObject({ budgetByModel: new Map([["llama3.1:8b", 8192], ["org/model=v2", 32_000]]), reservedOutputTokens: 1024 });
    const thinking = loadConfig({ ANTHROPIC_API_KEY: "sk-ant", ANTHROPIC_THINKING_BUDGET_TOKENS: "2048" }, workingDirectory);
    expect(thinking.context).toMatchObject({ replyTokens: 4096, reservedOutputTokens: 4096 + 2048 });

    for (const bad of ["gpt-4o-mini", "gpt-4o-mini=", "=8000", "gpt-4o-mini=8k", "gpt-4o-mini=100", "gpt-4o-mini=8000,gpt-4o-mini=9000"]) {
      expect(problemsOf({ OPENAI_API_KEY: "sk-test", CONTEXT_BUDGET_BY_MODEL: bad }).map((problem) => problem.split(":")[0]), bad).toEqual(["CONTEXT_BUDGET_BY_MODEL"]);
    }
    expect(problemsOf({ CONTEXT_BUDGET_BY_MODEL: "gpt-4o=128000" })).toEqual(["CONTEXT_BUDGET_BY_MODEL names gpt-4o, which is not LLM_MODEL or in LLM_MODELS"]);
    expect(problemsOf({ CONTEXT_BUDGET_TOKENS: "5000" })[0]).toMatch(/^CONTEXT_BUDGET_TOKENS=5000 leaves under 1024 tokens for the prompt after the reply's 4096/);
    expect(problemsOf({ LLM_MODELS: "small", CONTEXT_BUDGET_BY_MODEL: "small=4096" })[0]).toMatch(/^CONTEXT_BUDGET_BY_MODEL \(small\)=4096 leaves under 1024/);
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
    onTestFinished(() => rmSync(directory, { recursive: true, force: true }));
    const first = loadConfig({ DATA_DIR: directory }, workingDirectory);
    const second = loadConfig({ DATA_DIR: directory }, workingDirectory);
    expect(second.auth.secret).toBe(first.auth.secret);
    expect(readFileSync(join(directory, "auth-secret"), "utf8")).toBe(first.auth.secret);
  });
});
