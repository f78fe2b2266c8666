import { isIP } from "node:net";
import { z } from "zod";
import {
  defaultCoalesceMaxBytes,
  defaultCoalesceWindowMs,
  defaultHeartbeatMs,
  defaultKeyPrefix,
  defaultRetryJitterMs,
  defaultRetryMs,
  defaultStallTimeoutMs,
  defaultStreamLimits,
  defaultStreamTtlSeconds,
} from "../streaming/index.ts";
import { providerNames } from "../llm/llm-provider.ts";

/**
 * Every environment variable Sluice reads, with its default and unit. The streaming
 * core's defaults are its own constants (src/streaming), so each is declared once.
 * README.md ("Configuration") lists the same variables; keep them in step.
 * Only this folder reads process.env (STYLE.md: config is parsed once).
 */
const integer = (minimum: number, maximum = Number.MAX_SAFE_INTEGER) =>
  z.coerce.number().int().min(minimum).max(maximum);
const optionalText = z.string().trim().min(1).optional();
/** `host:port,host:port` (a cluster seed list); the bracket form `[::1]:7000` is accepted for IPv6. */
const clusterNode = String.raw`(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}`;
const clusterNodePattern = new RegExp(`^${clusterNode}$`);
const clusterUrlPattern = new RegExp(`^redis\\+cluster://${clusterNode}(,${clusterNode})*/?$`);
const clusterNodeList = z
  .string()
  .trim()
  .transform((value) => value.split(",").map((node) => node.trim()).filter(Boolean))
  .refine((nodes) => nodes.length > 0 && nodes.every((node) => clusterNodePattern.test(node)), "expected host:port[,host:port...]");
/**
 * TRUST_PROXY: how many proxy hops in front of Sluice to trust (`1` behind the shipped nginx), or
 * the proxies' addresses and CIDRs (`10.0.0.0/8,172.16.0.0/12`, or proxy-addr's `loopback`,
 * `linklocal`, `uniquelocal`). Never a blanket `true`: nginx appends to a client-sent
 * X-Forwarded-For, so trusting every hop would let a client choose its own address.
 */
const proxyName = new Set(["loopback", "linklocal", "uniquelocal"]);
const trustedProxy = (entry: string): boolean => {
  if (proxyName.has(entry)) return true;
  const [address = "", bits, ...rest] = entry.split("/");
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return false;
  if (bits === undefined) return true;
  // /0 would trust every address: the blanket `true` by another name.
  return /^\d{1,3}$/.test(bits) && Number(bits) >= 1 && Number(bits) <= (family === 4 ? 32 : 128);
};
const trustProxy = z
  .string()
  .trim()
  .transform((value, context): number | string[] => {
    if (/^\d+$/.test(value) && Number(value) >= 1 && Number(value) <= 10) return Number(value);
    const entries = value.split(",").map((entry) => entry.trim()).filter(Boolean);
    if (entries.length > 0 && entries.every(trustedProxy)) return entries;
    context.addIssue({ code: "custom", message: "expected a hop count (1-10) or a comma-separated list of proxy addresses/CIDRs; `true` is refused (it would trust a client-sent X-Forwarded-For)" });
    return z.NEVER;
  });
const flag = z.enum(["true", "false", "1", "0"]).transform((value) => value === "true" || value === "1");
/**
 * CONTEXT_BUDGET_BY_MODEL: `model=tokens,model=tokens`. A model name may hold `:` or `/`
 * (`llama3.1:8b`, `org/model`), so each entry splits at its last `=`.
 */
const modelBudgets = z
  .string()
  .trim()
  .transform((value, context): Array<[string, number]> => {
    const entries = value.split(",").map((entry) => entry.trim()).filter(Boolean);
    const parsed = entries.map((entry): [string, number] => {
      const separator = entry.lastIndexOf("=");
      return [entry.slice(0, separator).trim(), Number(entry.slice(separator + 1).trim())];
    });
    const valid = ([model, tokens]: [string, number]) => model !== "" && Number.isInteger(tokens) && tokens >= 1024 && tokens <= 10_000_000;
    if (parsed.length > 0 && parsed.every(valid) && new Set(parsed.map(([model]) => model)).size === parsed.length) return parsed;
    context.addIssue({ code: "custom", message: "expected model=tokens[,model=tokens...], each model once, tokens an integer from 1024 to 10000000" });
    return z.NEVER;
  });

export const envSchema = z.object({
  PORT: integer(0, 65_535).default(3000),
  HOST: z.string().min(1).default("127.0.0.1"),
  /**
   * Connections the kernel holds for the API before it accepts them (listen(2)'s backlog, capped by
   * net.core.somaxconn). Node's 511 overflowed in a burst of 500 starts per second, and an
   * overflowed connection is reset (BENCHMARKS.md): a burst should wait, not fail.
   */
  HTTP_LISTEN_BACKLOG: integer(1, 65_535).default(4096),
  /** Unset: X-Forwarded-For is ignored and the client is the socket's peer. */
  TRUST_PROXY: trustProxy.optional(),
  DATA_DIR: z.string().min(1).default("./.sluice"),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),

  DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/ }).optional(),
  DB_POOL_SIZE: integer(1, 1000).default(10),
  DB_STATEMENT_TIMEOUT_MS: integer(100).default(10_000),

  /** redis://, rediss://, unix:///path/redis.sock[?password=…], or redis+cluster://host:port,host:port (same as REDIS_CLUSTER_NODES). */
  REDIS_URL: z
    .union([
      z.url({ protocol: /^rediss?$/ }),
      z.string().regex(/^unix:\/\/\/[^?\s]+(\?\S*)?$/, "expected unix:///absolute/path/redis.sock"),
      z.string().regex(clusterUrlPattern, "expected redis+cluster://host:port[,host:port...]"),
    ])
    .optional(),
  /** Seed nodes of a Redis Cluster (`host:port,host:port`); when set, REDIS_URL is ignored. */
  REDIS_CLUSTER_NODES: clusterNodeList.optional(),
  REDIS_KEY_PREFIX: z.string().regex(/^[A-Za-z0-9:_-]+$/).default(defaultKeyPrefix),
  REDIS_COMMAND_TIMEOUT_MS: integer(50).default(5_000),

  LLM_PROVIDER: z.enum(providerNames).optional(),
  LLM_MODEL: optionalText,
  LLM_MODELS: optionalText,
  OPENAI_API_KEY: optionalText,
  OPENAI_BASE_URL: z.url().optional(),
  ANTHROPIC_API_KEY: optionalText,
  ANTHROPIC_BASE_URL: z.url().optional(),
  /**
   * Anthropic extended thinking: the reasoning budget in tokens, added to max_tokens (4096) so the
   * answer keeps its room; the thinking streams as `reasoning-delta` and shows under "Thinking".
   * 0 = off (no `thinking` sent). Anthropic's minimum is 1024.
   */
  ANTHROPIC_THINKING_BUDGET_TOKENS: z.coerce.number().int().refine((value) => value === 0 || (value >= 1024 && value <= 128_000), "expected 0 (off) or 1024-128000").default(0),
  SIMULATED_TOKENS_PER_SECOND: z.coerce.number().positive().max(100_000).default(30),
  SIMULATED_TOKEN_COUNT: integer(1, 1_000_000).default(120),
  /** Prefix each simulated word with its emit time (src/llm/token-stamp.ts), for the benchmark's cross-process latency. */
  SIMULATED_STAMP_TOKENS: flag.default(false),
  PROVIDER_IDLE_TIMEOUT_MS: integer(100).default(60_000),
  /**
   * Reach the OpenAI or Anthropic server over HTTP/2: one connection carries every generation's
   * stream, so one socket read brings the tokens of many (src/llm/node-http2-fetch.ts). Only for
   * servers that speak it: https by ALPN (api.openai.com, api.anthropic.com), plain http by prior
   * knowledge (h2c). vLLM, SGLang and llama.cpp's servers speak only HTTP/1.1; with them every
   * generation fails with a connection error.
   */
  PROVIDER_HTTP2: flag.default(false),
  PROVIDER_MAX_RETRIES: integer(0, 20).default(3),
  /**
   * Continuing a reply whose worker died (PROTOCOL.md 4.3): the next attempt sends the text viewers
   * already have as a trailing assistant turn and streams only the rest (`continue`), instead of
   * generating the whole reply again (`reset`). A provider capability, so switched per provider:
   * - OPENAI_CONTINUE_REPLIES, default false: api.openai.com answers a trailing assistant turn with a
   *   new reply, which appended to the kept text would garble it, so `true` is refused without an
   *   OPENAI_BASE_URL of another host. Turn it on for servers that continue it: vLLM and SGLang (the
   *   request also carries their `continue_final_message: true, add_generation_prompt: false`) and
   *   llama.cpp's server (which continues a trailing assistant turn by itself).
   * - ANTHROPIC_CONTINUE_REPLIES, default true: the Messages API's prefill. Set false for a model
   *   that refuses a prefilled assistant turn. Off by itself while ANTHROPIC_THINKING_BUDGET_TOKENS
   *   is set: Anthropic refuses prefill with extended thinking.
   * The simulated model always continues.
   */
  OPENAI_CONTINUE_REPLIES: flag.default(false),
  ANTHROPIC_CONTINUE_REPLIES: flag.default(true),

  /**
   * The context budget (README "Long conversations"): the tokens of a model's context window that a
   * request may fill, prompt and reply together. Each generation sends the system prompt and the
   * newest turns that fit in the budget less CONTEXT_REPLY_TOKENS (tokens estimated from UTF-8
   * bytes, src/worker/fit-context.ts), leaving the oldest turns out. Set it to the model's window,
   * or lower to bound the cost of a turn. 64000 fits the hosted defaults (gpt-4o-mini 128k,
   * Claude 200k) and holds a LIMIT_MESSAGE_CHARS message of CJK text with a long system prompt.
   */
  CONTEXT_BUDGET_TOKENS: integer(1024, 10_000_000).default(64_000),
  /** Per-model budgets, `model=tokens,...` (e.g. `llama3.1:8b=8192,gpt-4o=128000`); other models get CONTEXT_BUDGET_TOKENS. */
  CONTEXT_BUDGET_BY_MODEL: modelBudgets.optional(),
  /**
   * Tokens of each budget kept free for the reply. Also the max_tokens Sluice asks Anthropic for
   * (plus ANTHROPIC_THINKING_BUDGET_TOKENS, which is then reserved too); OpenAI-compatible servers
   * are sent no limit and stop at the window's end or their own.
   */
  CONTEXT_REPLY_TOKENS: integer(1, 1_000_000).default(4096),

  AUTH_SECRET: z.string().min(32).optional(),
  SESSION_TTL_HOURS: integer(1).default(24 * 30),
  /** A found or newly signed-in session is trusted this long without PostgreSQL (never past its expiry or idle timeout); sign-outs reach every API process at once over Redis pub/sub. 0 = off. */
  SESSION_CACHE_TTL_MS: integer(0, 3_600_000).default(300_000),
  /** A session unused this long ends (its last use is recorded at most every tenth of this, between a minute and an hour). */
  SESSION_IDLE_TIMEOUT_MINUTES: integer(5).default(7 * 24 * 60),
  /** Idempotency-Key records (which hold the message's text) are deleted this long after they were made. */
  IDEMPOTENCY_KEY_TTL_HOURS: integer(1).default(24),
  /** Tests only: scrypt N=2^10 instead of OWASP's N=2^17, so suites that register many users stay fast. Never in production. */
  TEST_ONLY_WEAK_PASSWORD_HASHING: flag.default(false),
  STREAM_TOKEN_TTL_SECONDS: integer(10).default(900),

  STREAM_TTL_SECONDS: integer(1).default(defaultStreamTtlSeconds),
  STREAM_MAX_ENTRIES: integer(10).default(defaultStreamLimits.maxEntries),
  STREAM_MAX_BYTES: integer(1024).default(defaultStreamLimits.maxBytes),
  STREAM_MAX_EVENT_BYTES: integer(256).default(defaultStreamLimits.maxEventBytes),
  COALESCE_WINDOW_MS: integer(0, 10_000).default(defaultCoalesceWindowMs),
  COALESCE_MAX_BYTES: integer(1, 1024 * 1024).default(defaultCoalesceMaxBytes),
  /** The widest coalescing window under load: the worker doubles its window while its event loop falls behind (src/streaming/load-adaptive-window.ts). At or below COALESCE_WINDOW_MS: no adaptation. */
  COALESCE_MAX_WINDOW_MS: integer(0, 10_000).default(100),
  HEARTBEAT_INTERVAL_MS: integer(100).default(defaultHeartbeatMs),
  SSE_RETRY_MS: integer(100).default(defaultRetryMs),
  /** Random extra added to each viewer's `retry:`, so a restart's reconnects spread out. */
  SSE_RETRY_JITTER_MS: integer(0).default(defaultRetryJitterMs),
  STREAM_STALL_TIMEOUT_MS: integer(100).default(defaultStallTimeoutMs),

  WORKER_CONCURRENCY: integer(1, 100_000).default(500),
  JOB_ATTEMPTS: integer(1, 50).default(3),
  /**
   * A crashed worker's job is taken over after its lock lapses and the next stalled check finds
   * it: at most JOB_LOCK_DURATION_MS + JOB_STALLED_INTERVAL_MS after the crash (BullMQ marks active
   * jobs at one check and moves those still unlocked at the next; a renewal unmarks). 6 s + 1.5 s
   * keeps the next attempt within 10 s of a crash (BullMQ's 30 s + 30 s left viewers a minute of
   * silence). What a short lock risks is a false stall: a live worker that misses its renewals for
   * longer than the lock loses the job and a second attempt runs beside it (fencing makes it safe,
   * not free). The worker renews every JOB_LOCK_DURATION_MS / 6 (1 s; src/worker/start-worker.ts)
   * instead of BullMQ's / 2, so only an event loop stalled for ~5 s does that: 15 times the
   * worst event-loop delay the benchmarks saw in a loaded worker (0.33 s, bench/results/latest-full.json).
   * A stalled check is one script over the active list, cheap at this rate.
   */
  JOB_LOCK_DURATION_MS: integer(500).default(6_000),
  JOB_STALLED_INTERVAL_MS: integer(500).default(1_500),
  ORPHAN_SWEEP_INTERVAL_MS: integer(100).default(15_000),
  ORPHAN_TIMEOUT_MS: integer(1000).default(120_000),
  SHUTDOWN_GRACE_MS: integer(0).default(10_000),
  /** The final save is retried this long while PostgreSQL is unavailable (a restart or failover), then the attempt fails and the job retries. */
  FINAL_SAVE_RETRY_MS: integer(1_000).default(120_000),
  WORKER_METRICS_PORT: integer(0, 65_535).optional(),
  /** `sluice start` runs its worker in a second thread (a second core; PGlite stays in the API thread). false = one thread. */
  START_WORKER_THREAD: flag.default(true),
  /** API processes (`api`, `start`) serve GET /metrics on this port instead of on PORT, so a public proxy in front of PORT never exposes it. */
  API_METRICS_PORT: integer(0, 65_535).optional(),
  ENABLE_WEB_UI: flag.default(true),

  /** OpenTelemetry, by the standard names: tracing is on when an OTLP/HTTP endpoint is set (docs/operations.md "Tracing"). */
  OTEL_EXPORTER_OTLP_ENDPOINT: z.url({ protocol: /^https?$/ }).optional(),
  /** Full traces URL; wins over OTEL_EXPORTER_OTLP_ENDPOINT + `/v1/traces`. */
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: z.url({ protocol: /^https?$/ }).optional(),
  /** Default: sluice-api, sluice-worker or sluice (start), by role. */
  OTEL_SERVICE_NAME: optionalText,
  /** Ratio of new traces sampled (sampler: parent-based trace-id ratio). */
  OTEL_TRACES_SAMPLER_ARG: z.coerce.number().min(0).max(1).default(1),
  OTEL_SDK_DISABLED: flag.default(false),

  LIMIT_BODY_BYTES: integer(1024, 1024 * 1024).default(1024 * 1024),
  LIMIT_MESSAGE_CHARS: integer(1, 1_000_000).default(32_000),
  LIMIT_AUTH_PER_MINUTE: integer(1).default(20),
  /** Sign-in attempts per account (whatever the address) per LIMIT_LOGIN_ACCOUNT_WINDOW_MINUTES; a success clears the count. */
  LIMIT_LOGIN_ATTEMPTS_PER_ACCOUNT: integer(1).default(10),
  LIMIT_LOGIN_ACCOUNT_WINDOW_MINUTES: integer(1).default(15),
  /** Password hashes (scrypt, 128 MiB each) computed at once per API process; more wait in a queue... */
  LIMIT_PASSWORD_HASHES: integer(1, 64).default(2),
  /** ...of this length; beyond it sign-in and register answer 503 SIGN_IN_BUSY with Retry-After. */
  LIMIT_PASSWORD_HASH_QUEUE: integer(0, 100_000).default(16),
  LIMIT_MESSAGES_PER_MINUTE: integer(1).default(30),
  LIMIT_OPEN_STREAMS_PER_USER: integer(1).default(20),
  LIMIT_GENERATIONS_PER_USER: integer(1).default(3),
  /** Slowloris: a request whose headers and body have not all arrived by then is answered 408 and closed. */
  LIMIT_REQUEST_TIMEOUT_MS: integer(1000).default(30_000),
});

export type Env = z.infer<typeof envSchema>;
