import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { seededRandom } from "../../../src/llm/simulated-text.ts";

/**
 * What the fake OpenAI and Anthropic servers share: the seeded token script a
 * test can predict, the fault modes, request recording, the control endpoint
 * and the command-line entry. Each server file adds only its wire format.
 */
export const fakeModes = [
  "normal", // the whole reply, finish reason, usage
  "slow", // the same, tokens spaced by slowTokenDelayMs
  "cut", // some tokens, then the response ends cleanly without a finish reason / message_stop
  "reset", // some tokens, then the TCP connection is destroyed mid-body
  "rate-limit", // 429 with Retry-After and the provider's error body
  "server-error", // 500 with the provider's error body
  "unauthorized", // 401 with the provider's error body
  "bad-request", // 400 with the provider's error body
  "stall", // headers and a few tokens, then silence until the client or close() ends it
  "malformed", // an invalid JSON data line mid-stream
  "huge", // a reply of about hugeReplyBytes
] as const;
export type FakeMode = (typeof fakeModes)[number];

export function isFakeMode(value: unknown): value is FakeMode {
  return typeof value === "string" && (fakeModes as readonly string[]).includes(value);
}

/** A request's mode: model `fake-<mode>` overrides the server default. */
export function modeForModel(model: unknown, fallback: FakeMode): FakeMode {
  if (typeof model === "string" && model.startsWith("fake-")) {
    const mode = model.slice("fake-".length);
    if (isFakeMode(mode)) return mode;
  }
  return fallback;
}

// Non-ASCII, quotes, HTML and newlines on purpose: the wire encoding must carry them intact.
const vocabulary = [
  "alpha", "beta", "gamma", "delta", "naïve", "café", "—", "\"quoted\"", "<b>bold</b>", "line\nbreak",
  "🚀", "日本語", "tab\there", "back\\slash", "50%", "end.",
];


/** The seeded token sequence the servers stream; `tokens.join("")` is the reply. */
export function scriptTokens(seed: number, count: number): string[] {
  const random = seededRandom(seed);
  const tokens: string[] = [];
  for (let index = 0; index < count; index++) {
    const word = vocabulary[Math.floor(random() * vocabulary.length)] ?? "alpha";
    tokens.push(index === 0 ? word : ` ${word}`);
  }
  return tokens;
}

/** The reasoning streamed before the reply when a request gets some: another seed's tokens. */
export function reasoningTokens(seed: number, count: number): string[] {
  return scriptTokens(seed + 1, count);
}

/**
 * The start of a reply a request asks to continue: its trailing assistant turn (Anthropic's
 * prefill; for an OpenAI-compatible server only with vLLM's `continue_final_message: true`,
 * as without it a trailing assistant turn is answered, not continued). Undefined otherwise.
 */
export function continuationOf(body: unknown, needsSwitch: boolean): string | undefined {
  const payload = body as { messages?: Array<{ role?: unknown; content?: unknown }>; continue_final_message?: unknown } | undefined;
  const last = payload?.messages?.at(-1);
  if (last?.role !== "assistant" || typeof last.content !== "string") return undefined;
  if (needsSwitch && payload?.continue_final_message !== true) return undefined;
  return last.content;
}

/** The tokens after `prefill` when the reply starts with it (the token it ends in is cut), else all of them: a new reply. */
export function tokensAfterPrefill(tokens: readonly string[], prefill: string | undefined): string[] {
  if (prefill === undefined || !tokens.join("").startsWith(prefill)) return [...tokens];
  let length = 0;
  for (const [index, token] of tokens.entries()) {
    if (length + token.length > prefill.length) return [token.slice(prefill.length - length), ...tokens.slice(index + 1)];
    length += token.length;
  }
  return [];
}

/** The "huge" reply as ~1 KB ASCII chunks (so chunk boundaries never split a character). */
export function hugeTokens(seed: number, totalBytes: number): string[] {
  const random = seededRandom(seed);
  const tokens: string[] = [];
  let size = 0;
  for (let index = 0; size < totalBytes; index++) {
    const fill = String.fromCharCode(97 + Math.floor(random() * 26)).repeat(1000);
    const token = `[${index}]${fill}\n`;
    tokens.push(token);
    size += token.length;
  }
  return tokens;
}

export interface FakeServerOptions {
  /** Default 0: a free port. */
  port?: number;
  mode?: FakeMode;
  seed?: number;
  tokenCount?: number;
  /** Tokens sent before a cut, reset, stall or malformed line. */
  tokensBeforeFault?: number;
  slowTokenDelayMs?: number;
  retryAfterSeconds?: number;
  hugeReplyBytes?: number;
  /**
   * OpenAI fake: send `reasoningTokenCount` tokens of reasoning before the reply in this delta
   * field (`reasoning_content` as vLLM, DeepSeek and llama.cpp; `reasoning` as Ollama and
   * OpenRouter); unset sends none. The Anthropic fake sends thinking blocks when the request asks.
   */
  reasoningField?: "reasoning_content" | "reasoning";
  /** Default 12. */
  reasoningTokenCount?: number;
}

export interface ResolvedFakeServerOptions {
  mode: FakeMode;
  seed: number;
  tokenCount: number;
  tokensBeforeFault: number;
  slowTokenDelayMs: number;
  retryAfterSeconds: number;
  hugeReplyBytes: number;
  reasoningField: "reasoning_content" | "reasoning" | undefined;
  reasoningTokenCount: number;
}

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: unknown;
  mode: FakeMode;
  /** Resolves when the response's connection is gone (finished or dropped). */
  closed: Promise<void>;
  /** True once the client went away before the server finished the response. */
  closedByClient: boolean;
}

export interface FakeProviderServer {
  /** The base URL to hand the vendor SDK (`baseURL`). */
  readonly url: string;
  readonly port: number;
  readonly requests: RecordedRequest[];
  setMode(mode: FakeMode): void;
  /** The full reply text in normal and slow modes. */
  expectedText(seed?: number): string;
  /** The reasoning text sent before the reply, when one is sent. */
  expectedReasoning(seed?: number): string;
  /** The full reply text in huge mode. */
  expectedHugeText(seed?: number): string;
  /** Ends open streams (stall) and stops listening. */
  close(): Promise<void>;
}

/** What a server's wire format gets for one request. */
export interface FakeExchange {
  request: RecordedRequest;
  response: ServerResponse;
  options: ResolvedFakeServerOptions;
  /** Writes and waits for drain when the socket buffer is full. */
  write(text: string): Promise<void>;
  /** Resolves once everything written so far has left for the kernel. */
  flush(): Promise<void>;
  /** Waits `delayMs`, or less if the client goes away. Returns false if it went away. */
  delay(delayMs: number): Promise<boolean>;
  /** Resolves when the client or close() ends the connection. */
  untilClosed(): Promise<void>;
  isOpen(): boolean;
}

export interface FakeWireFormat {
  /** e.g. "/v1/chat/completions" */
  path: string;
  /** The base URL's path suffix the SDK expects ("/v1" for OpenAI, "" for Anthropic). */
  basePath: string;
  respond(exchange: FakeExchange): Promise<void>;
}

export function resolveFakeServerOptions(options: FakeServerOptions): ResolvedFakeServerOptions {
  return {
    mode: options.mode ?? "normal",
    seed: options.seed ?? 42,
    tokenCount: options.tokenCount ?? 40,
    tokensBeforeFault: options.tokensBeforeFault ?? 3,
    slowTokenDelayMs: options.slowTokenDelayMs ?? 20,
    retryAfterSeconds: options.retryAfterSeconds ?? 7,
    hugeReplyBytes: options.hugeReplyBytes ?? 5 * 1024 * 1024,
    reasoningField: options.reasoningField,
    reasoningTokenCount: options.reasoningTokenCount ?? 12,
  };
}

export async function startFakeServer(wire: FakeWireFormat, options: FakeServerOptions = {}): Promise<FakeProviderServer> {
  const settings = resolveFakeServerOptions(options);
  const requests: RecordedRequest[] = [];
  const server = createServer((request, response) => {
    void handle(request, response).catch(() => {
      if (!response.headersSent) response.writeHead(500).end();
      else response.destroy();
    });
  });

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const text = await readBody(request);
    const path = (request.url ?? "/").split("?")[0] ?? "/";
    if (request.method === "POST" && path === "/__control/mode") {
      const mode = (safeJson(text) as { mode?: unknown } | undefined)?.mode;
      if (!isFakeMode(mode)) {
        response.writeHead(400, { "content-type": "application/json" }).end(JSON.stringify({ error: "unknown mode" }));
        return;
      }
      settings.mode = mode;
      response.writeHead(204).end();
      return;
    }
    if (request.method !== "POST" || path !== wire.path) {
      response.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ error: "not found" }));
      return;
    }
    const body = safeJson(text);
    const closed = new Promise<void>((resolve) => {
      response.once("close", () => {
        // Runs after `recorded` exists: "close" cannot fire before this handler returns.
        if (!response.writableFinished) recorded.closedByClient = true;
        resolve();
      });
    });
    const recorded: RecordedRequest = {
      method: request.method,
      path,
      headers: request.headers,
      body,
      mode: modeForModel((body as { model?: unknown } | undefined)?.model, settings.mode),
      closed,
      closedByClient: false,
    };
    requests.push(recorded);
    await wire.respond(createExchange(recorded, response, { ...settings }));
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}${wire.basePath}`,
    port,
    requests,
    setMode: (mode) => {
      settings.mode = mode;
    },
    expectedText: (seed = settings.seed) => scriptTokens(seed, settings.tokenCount).join(""),
    expectedReasoning: (seed = settings.seed) => reasoningTokens(seed, settings.reasoningTokenCount).join(""),
    expectedHugeText: (seed = settings.seed) => hugeTokens(seed, settings.hugeReplyBytes).join(""),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function createExchange(request: RecordedRequest, response: ServerResponse, options: ResolvedFakeServerOptions): FakeExchange {
  const isOpen = (): boolean => !response.destroyed && !response.writableEnded;
  const untilClosed = (): Promise<void> => request.closed;
  return {
    request,
    response,
    options,
    isOpen,
    untilClosed,
    write: async (text) => {
      if (!isOpen()) return;
      if (!response.write(text)) {
        await Promise.race([new Promise<void>((resolve) => response.once("drain", () => resolve())), untilClosed()]);
      }
    },
    flush: () =>
      new Promise<void>((resolve) => {
        if (!isOpen()) resolve();
        else response.write("", () => resolve());
      }),
    delay: async (delayMs) => {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([new Promise<void>((resolve) => (timer = setTimeout(resolve, delayMs))), untilClosed()]);
      clearTimeout(timer);
      return isOpen();
    },
  };
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    request.on("error", reject);
  });
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

export function modelOf(body: unknown): string {
  const model = (body as { model?: unknown } | undefined)?.model;
  return typeof model === "string" ? model : "fake";
}

/** Prompt "tokens" the fakes report: characters of every message's text content (tests recompute it). */
export function countPromptCharacters(body: unknown): number {
  const payload = body as { messages?: Array<{ content?: unknown }>; system?: unknown } | undefined;
  let total = typeof payload?.system === "string" ? payload.system.length : 0;
  for (const message of payload?.messages ?? []) {
    if (typeof message.content === "string") total += message.content.length;
  }
  return total;
}

/** `--port N --mode M --seed S` (and the other options, kebab-cased) for running a fake server as its own process. */
export function parseFakeServerArgs(argv: readonly string[]): FakeServerOptions {
  const options: FakeServerOptions = {};
  for (let index = 0; index < argv.length; index += 2) {
    const name = argv[index];
    const value = argv[index + 1];
    if (value === undefined) throw new Error(`missing value for ${name}`);
    if (name === "--port") options.port = Number(value);
    else if (name === "--seed") options.seed = Number(value);
    else if (name === "--token-count") options.tokenCount = Number(value);
    else if (name === "--slow-token-delay-ms") options.slowTokenDelayMs = Number(value);
    else if (name === "--mode" && isFakeMode(value)) options.mode = value;
    else if (name === "--reasoning-field" && (value === "reasoning_content" || value === "reasoning")) options.reasoningField = value;
    else if (name === "--reasoning-token-count") options.reasoningTokenCount = Number(value);
    else throw new Error(`unknown argument ${name} ${value}`);
  }
  return options;
}

/** Runs a fake server until SIGTERM/SIGINT, printing its base URL as the first stdout line. */
export async function runFakeServerProcess(start: (options: FakeServerOptions) => Promise<FakeProviderServer>): Promise<void> {
  const server = await start(parseFakeServerArgs(process.argv.slice(2)));
  process.stdout.write(`${server.url}\n`);
  const stop = (): void => {
    void server.close().then(() => process.exit(0));
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
}
