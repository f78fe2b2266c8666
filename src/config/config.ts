import { randomBytes } from "node:crypto";
import { isAbsolute, join, resolve } from "node:path";
import { z } from "zod";
import { readOrCreateSecret } from "../embedded/private-files.ts";
import type { ProviderName } from "../llm/llm-provider.ts";
import { envSchema, type Env } from "./env-schema.ts";

const defaultModels: Record<ProviderName, string> = {
  simulated: "sluice-simulated",
  openai: "gpt-4o-mini",
  anthropic: "claude-sonnet-4-5",
};

/** The one typed, frozen configuration object. Built once by the entry point. */
export interface Config {
  readonly http: {
    readonly port: number;
    readonly host: string;
    /** HTTP_LISTEN_BACKLOG: connections queued in the kernel before the API accepts them. */
    readonly listenBacklog: number;
    /** TRUST_PROXY: false (unset), a hop count, or proxy addresses/CIDRs; never blanket true. */
    readonly trustProxy: false | number | readonly string[];
  };
  readonly dataDirectory: string;
  readonly logLevel: Env["LOG_LEVEL"];
  readonly database: { readonly url: string | undefined; readonly poolSize: number; readonly statementTimeoutMs: number };
  readonly redis: {
    readonly url: string | undefined;
    /** Redis Cluster seed nodes; when set, `url` is undefined and every role connects to the cluster. */
    readonly clusterNodes: readonly { readonly host: string; readonly port: number }[] | undefined;
    readonly keyPrefix: string;
    readonly commandTimeoutMs: number;
  };
  readonly llm: {
    readonly provider: ProviderName;
    /** Why this provider was chosen, for the startup log line. */
    readonly providerReason: string;
    readonly defaultModel: string;
    readonly allowedModels: readonly string[];
    readonly openai: { readonly apiKey: string | undefined; readonly baseUrl: string | undefined };
    readonly anthropic: { readonly apiKey: string | undefined; readonly baseUrl: string | undefined; readonly thinkingBudgetTokens: number };
    readonly simulated: { readonly tokensPerSecond: number; readonly tokenCount: number; readonly stampTokens: boolean };
    readonly idleTimeoutMs: number;
    /** The OpenAI or Anthropic server over HTTP/2 (PROVIDER_HTTP2). */
    readonly http2: boolean;
    readonly maxRetries: number;
    /** Whether a crashed reply is continued rather than restarted, per provider (env-schema.ts, *_CONTINUE_REPLIES). */
    readonly continueReplies: { readonly openai: boolean; readonly anthropic: boolean };
  };
  readonly auth: {
    readonly secret: string;
    readonly sessionTtlHours: number;
    readonly sessionIdleTimeoutMinutes: number;
    readonly sessionCacheTtlMs: number;
    readonly streamTokenTtlSeconds: number;
    /** scrypt parameters for new and upgraded password hashes (src/auth/password-hashing.ts). */
    readonly passwordHashing: { readonly cost: number; readonly blockSize: number; readonly parallelization: number };
  };
  /** The history sent to the model fits these (env-schema.ts CONTEXT_*; src/worker/context-budget.ts). */
  readonly context: {
    /** A model's context window, prompt and reply, when CONTEXT_BUDGET_BY_MODEL does not name it. */
    readonly defaultBudgetTokens: number;
    readonly budgetByModel: ReadonlyMap<string, number>;
    /** The reply's max output tokens: Anthropic's max_tokens before the thinking budget. */
    readonly replyTokens: number;
    /** Kept free of every budget for the reply: replyTokens, plus the thinking budget with Anthropic. */
    readonly reservedOutputTokens: number;
  };
  /** Idempotency-Key records are purged this long after they were made. */
  readonly idempotencyKeyTtlHours: number;
  readonly stream: {
    readonly ttlSeconds: number;
    readonly maxEntries: number;
    readonly maxBytes: number;
    readonly maxEventBytes: number;
    readonly coalesceWindowMs: number;
    readonly coalesceMaxBytes: number;
    /** The load-adaptive window's budget (ms); at or below coalesceWindowMs the window is fixed. */
    readonly coalesceMaxWindowMs: number;
    readonly heartbeatIntervalMs: number;
    readonly retryMs: number;
    readonly retryJitterMs: number;
    readonly stallTimeoutMs: number;
  };
  readonly worker: {
    readonly concurrency: number;
    readonly attempts: number;
    readonly lockDurationMs: number;
    readonly stalledIntervalMs: number;
    readonly orphanSweepIntervalMs: number;
    readonly orphanTimeoutMs: number;
    readonly shutdownGraceMs: number;
    readonly finalSaveRetryMs: number;
    /** `sluice worker` serves GET /metrics on this port when set (API processes serve it on PORT). */
    readonly metricsPort: number | undefined;
    /** `sluice start` runs the worker in its own thread (src/main/start-worker-thread.ts). */
    readonly startInThread: boolean;
  };
  /** API_METRICS_PORT: API processes serve GET /metrics on this port (and not on PORT) when set. */
  readonly apiMetricsPort: number | undefined;
  readonly webUi: boolean;
  /** OpenTelemetry tracing; off (nothing loaded) when `tracesEndpoint` is undefined. */
  readonly tracing: {
    readonly tracesEndpoint: string | undefined;
    /** OTEL_SERVICE_NAME; undefined = named by role at startup. */
    readonly serviceName: string | undefined;
    readonly sampleRatio: number;
  };
  readonly limits: {
    readonly bodyBytes: number;
    readonly messageChars: number;
    readonly authPerMinute: number;
    readonly loginAttemptsPerAccount: number;
    readonly loginAccountWindowMinutes: number;
    readonly passwordHashes: number;
    readonly passwordHashQueue: number;
    readonly messagesPerMinute: number;
    readonly openStreamsPerUser: number;
    readonly generationsPerUser: number;
    readonly requestTimeoutMs: number;
  };
}

/** The least prompt room a context budget may leave after the reply's reserve (tokens). */
const minimumPromptTokens = 1024;
/** OWASP Password Storage Cheat Sheet's minimum for scrypt: N=2^17, r=8, p=1 (128 MiB per hash). */
const owaspPasswordHashing = { cost: 2 ** 17, blockSize: 8, parallelization: 1 } as const;
/** TEST_ONLY_WEAK_PASSWORD_HASHING: 1 MiB and about a millisecond per hash. */
const weakTestPasswordHashing = { cost: 2 ** 10, blockSize: 8, parallelization: 1 } as const;

export class ConfigError extends Error {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(`Invalid configuration:\n${problems.map((problem) => `  - ${problem}`).join("\n")}`);
    this.name = "ConfigError";
    this.problems = problems;
  }
}

/**
 * Parses the environment into a frozen Config, or throws one ConfigError that
 * lists every bad variable at once.
 * @example const config = loadConfig(process.env, process.cwd());
 */
export function loadConfig(environment: Readonly<Record<string, string | undefined>>, workingDirectory: string): Config {
  // An empty variable means "unset", as in most shells' `VAR= cmd`.
  const present = Object.fromEntries(Object.entries(environment).filter(([, value]) => value !== undefined && value !== ""));
  const parsed = envSchema.safeParse(present);
  if (!parsed.success) throw new ConfigError(formatIssues(parsed.error));
  const env = parsed.data;
  const problems: string[] = [];

  const { provider, reason } = chooseProvider(env);
  if (provider === "openai" && !env.OPENAI_API_KEY && !env.OPENAI_BASE_URL) problems.push("LLM_PROVIDER=openai needs OPENAI_API_KEY (or OPENAI_BASE_URL for a local server)");
  if (provider === "anthropic" && !env.ANTHROPIC_API_KEY) problems.push("LLM_PROVIDER=anthropic needs ANTHROPIC_API_KEY");
  if (env.OPENAI_CONTINUE_REPLIES && isOpenAiItself(env.OPENAI_BASE_URL)) {
    problems.push("OPENAI_CONTINUE_REPLIES=true needs OPENAI_BASE_URL of a server that continues a trailing assistant turn (vLLM, SGLang, llama.cpp): api.openai.com answers it with a new reply");
  }
  const defaultModel = env.LLM_MODEL ?? defaultModels[provider];
  const listed = env.LLM_MODELS?.split(",").map((model) => model.trim()).filter(Boolean) ?? [];
  const allowedModels = [...new Set([defaultModel, ...listed])];
  const reservedOutputTokens = env.CONTEXT_REPLY_TOKENS + (provider === "anthropic" ? env.ANTHROPIC_THINKING_BUDGET_TOKENS : 0);
  const budgetByModel = new Map(env.CONTEXT_BUDGET_BY_MODEL ?? []);
  for (const [name, budget] of [["CONTEXT_BUDGET_TOKENS", env.CONTEXT_BUDGET_TOKENS] as const, ...[...budgetByModel].map(([model, tokens]) => [`CONTEXT_BUDGET_BY_MODEL (${model})`, tokens] as const)]) {
    if (budget - reservedOutputTokens < minimumPromptTokens) problems.push(`${name}=${budget} leaves under ${minimumPromptTokens} tokens for the prompt after the reply's ${reservedOutputTokens} (CONTEXT_REPLY_TOKENS, plus ANTHROPIC_THINKING_BUDGET_TOKENS with Anthropic)`);
  }
  // A budget for a model nobody may ask for is a typo that would silently not apply.
  for (const model of budgetByModel.keys()) {
    if (!allowedModels.includes(model)) problems.push(`CONTEXT_BUDGET_BY_MODEL names ${model}, which is not LLM_MODEL or in LLM_MODELS`);
  }
  if (problems.length > 0) throw new ConfigError(problems);

  const dataDirectory = isAbsolute(env.DATA_DIR) ? env.DATA_DIR : resolve(workingDirectory, env.DATA_DIR);
  const config: Config = {
    http: { port: env.PORT, host: env.HOST, listenBacklog: env.HTTP_LISTEN_BACKLOG, trustProxy: env.TRUST_PROXY ?? false },
    dataDirectory,
    logLevel: env.LOG_LEVEL,
    database: { url: env.DATABASE_URL, poolSize: env.DB_POOL_SIZE, statementTimeoutMs: env.DB_STATEMENT_TIMEOUT_MS },
    redis: { ...chooseRedis(env.REDIS_URL, env.REDIS_CLUSTER_NODES), keyPrefix: env.REDIS_KEY_PREFIX, commandTimeoutMs: env.REDIS_COMMAND_TIMEOUT_MS },
    llm: {
      provider,
      providerReason: reason,
      defaultModel,
      allowedModels,
      openai: { apiKey: env.OPENAI_API_KEY, baseUrl: env.OPENAI_BASE_URL },
      anthropic: { apiKey: env.ANTHROPIC_API_KEY, baseUrl: env.ANTHROPIC_BASE_URL, thinkingBudgetTokens: env.ANTHROPIC_THINKING_BUDGET_TOKENS },
      simulated: { tokensPerSecond: env.SIMULATED_TOKENS_PER_SECOND, tokenCount: env.SIMULATED_TOKEN_COUNT, stampTokens: env.SIMULATED_STAMP_TOKENS },
      idleTimeoutMs: env.PROVIDER_IDLE_TIMEOUT_MS,
      http2: env.PROVIDER_HTTP2,
      maxRetries: env.PROVIDER_MAX_RETRIES,
      continueReplies: { openai: env.OPENAI_CONTINUE_REPLIES, anthropic: env.ANTHROPIC_CONTINUE_REPLIES },
    },
    auth: {
      secret: env.AUTH_SECRET ?? embeddedSecret(dataDirectory),
      sessionTtlHours: env.SESSION_TTL_HOURS,
      sessionIdleTimeoutMinutes: env.SESSION_IDLE_TIMEOUT_MINUTES,
      sessionCacheTtlMs: env.SESSION_CACHE_TTL_MS,
      streamTokenTtlSeconds: env.STREAM_TOKEN_TTL_SECONDS,
      passwordHashing: env.TEST_ONLY_WEAK_PASSWORD_HASHING ? weakTestPasswordHashing : owaspPasswordHashing,
    },
    context: { defaultBudgetTokens: env.CONTEXT_BUDGET_TOKENS, budgetByModel, replyTokens: env.CONTEXT_REPLY_TOKENS, reservedOutputTokens },
    idempotencyKeyTtlHours: env.IDEMPOTENCY_KEY_TTL_HOURS,
    stream: {
      ttlSeconds: env.STREAM_TTL_SECONDS,
      maxEntries: env.STREAM_MAX_ENTRIES,
      maxBytes: env.STREAM_MAX_BYTES,
      maxEventBytes: env.STREAM_MAX_EVENT_BYTES,
      coalesceWindowMs: env.COALESCE_WINDOW_MS,
      coalesceMaxBytes: env.COALESCE_MAX_BYTES,
      coalesceMaxWindowMs: env.COALESCE_MAX_WINDOW_MS,
      heartbeatIntervalMs: env.HEARTBEAT_INTERVAL_MS,
      retryMs: env.SSE_RETRY_MS,
      retryJitterMs: env.SSE_RETRY_JITTER_MS,
      stallTimeoutMs: env.STREAM_STALL_TIMEOUT_MS,
    },
    worker: {
      concurrency: env.WORKER_CONCURRENCY,
      attempts: env.JOB_ATTEMPTS,
      lockDurationMs: env.JOB_LOCK_DURATION_MS,
      stalledIntervalMs: env.JOB_STALLED_INTERVAL_MS,
      orphanSweepIntervalMs: env.ORPHAN_SWEEP_INTERVAL_MS,
      orphanTimeoutMs: env.ORPHAN_TIMEOUT_MS,
      shutdownGraceMs: env.SHUTDOWN_GRACE_MS,
      finalSaveRetryMs: env.FINAL_SAVE_RETRY_MS,
      metricsPort: env.WORKER_METRICS_PORT,
      startInThread: env.START_WORKER_THREAD,
    },
    apiMetricsPort: env.API_METRICS_PORT,
    webUi: env.ENABLE_WEB_UI,
    tracing: { tracesEndpoint: tracesEndpoint(env), serviceName: env.OTEL_SERVICE_NAME, sampleRatio: env.OTEL_TRACES_SAMPLER_ARG },
    limits: {
      bodyBytes: env.LIMIT_BODY_BYTES,
      messageChars: env.LIMIT_MESSAGE_CHARS,
      authPerMinute: env.LIMIT_AUTH_PER_MINUTE,
      loginAttemptsPerAccount: env.LIMIT_LOGIN_ATTEMPTS_PER_ACCOUNT,
      loginAccountWindowMinutes: env.LIMIT_LOGIN_ACCOUNT_WINDOW_MINUTES,
      passwordHashes: env.LIMIT_PASSWORD_HASHES,
      passwordHashQueue: env.LIMIT_PASSWORD_HASH_QUEUE,
      messagesPerMinute: env.LIMIT_MESSAGES_PER_MINUTE,
      openStreamsPerUser: env.LIMIT_OPEN_STREAMS_PER_USER,
      generationsPerUser: env.LIMIT_GENERATIONS_PER_USER,
      requestTimeoutMs: env.LIMIT_REQUEST_TIMEOUT_MS,
    },
  };
  return deepFreeze(config);
}

/** Unset, or api.openai.com itself: the server that does not continue a trailing assistant turn. */
function isOpenAiItself(baseUrl: string | undefined): boolean {
  return baseUrl === undefined || new URL(baseUrl).hostname === "api.openai.com";
}

/** The OTLP/HTTP spec's rule: the per-signal variable is used as is, the generic one gets `/v1/traces` appended. */
function tracesEndpoint(env: Env): string | undefined {
  if (env.OTEL_SDK_DISABLED) return undefined;
  if (env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) return env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  if (env.OTEL_EXPORTER_OTLP_ENDPOINT) return `${env.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/+$/, "")}/v1/traces`;
  return undefined;
}

/** With no key configured Sluice runs the simulated model, so `npm start` works offline. */
/** REDIS_CLUSTER_NODES wins; a `redis+cluster://a:1,b:2` REDIS_URL is the same seed list in URL form. */
function chooseRedis(url: string | undefined, clusterNodes: readonly string[] | undefined): Pick<Config["redis"], "url" | "clusterNodes"> {
  const clusterUrlScheme = "redis+cluster://";
  const seeds = clusterNodes ?? (url?.startsWith(clusterUrlScheme) ? url.slice(clusterUrlScheme.length).replace(/\/$/, "").split(",") : undefined);
  if (seeds === undefined) return { url, clusterNodes: undefined };
  return {
    url: undefined,
    clusterNodes: seeds.map((node) => {
      const separator = node.lastIndexOf(":");
      return { host: node.slice(0, separator).replace(/^\[(.*)\]$/, "$1"), port: Number(node.slice(separator + 1)) };
    }),
  };
}

function chooseProvider(env: Env): { provider: ProviderName; reason: string } {
  if (env.LLM_PROVIDER) return { provider: env.LLM_PROVIDER, reason: "LLM_PROVIDER is set" };
  if (env.OPENAI_API_KEY) return { provider: "openai", reason: "OPENAI_API_KEY is set" };
  if (env.ANTHROPIC_API_KEY) return { provider: "anthropic", reason: "ANTHROPIC_API_KEY is set" };
  return { provider: "simulated", reason: "no LLM key is configured" };
}

/**
 * The embedded setup keeps a random signing secret in the data directory so
 * tokens survive restarts. Several processes must share AUTH_SECRET instead.
 */
function embeddedSecret(dataDirectory: string): string {
  // DATA_DIR 0700, the file 0600, written whole and never through an existing path (src/embedded/private-files.ts).
  return readOrCreateSecret(join(dataDirectory, "auth-secret"), () => randomBytes(32).toString("base64url"), (secret) => secret.length >= 32);
}

function formatIssues(error: z.ZodError): string[] {
  return error.issues.map((issue) => `${issue.path.join(".") || "(environment)"}: ${issue.message}`);
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object") {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
