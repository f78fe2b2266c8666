import { fileURLToPath } from "node:url";
import {
  continuationOf,
  countPromptCharacters,
  hugeTokens,
  modelOf,
  reasoningTokens,
  runFakeServerProcess,
  scriptTokens,
  startFakeServer,
  type FakeExchange,
  type FakeProviderServer,
  type FakeServerOptions,
  tokensAfterPrefill,
} from "./fake-provider-script.ts";

/**
 * A local server speaking Anthropic's Messages streaming wire format
 * (message_start, content_block_start/delta/stop, message_delta, message_stop,
 * ping), so the real `@anthropic-ai/sdk` runs against it. `url` is the SDK's
 * baseURL (no /v1: the SDK adds it). Model `fake-<mode>` picks a fault per request.
 *
 * As a process: `node test/support/providers/fake-anthropic-server.ts --port N [--mode M] [--seed S]` prints its URL.
 */
export function startFakeAnthropicServer(options: FakeServerOptions = {}): Promise<FakeProviderServer> {
  return startFakeServer({ path: "/v1/messages", basePath: "", respond: respondAnthropic }, options);
}

// Bodies as the Anthropic API sends them.
const errorBodies = {
  "rate-limit": {
    status: 429,
    type: "rate_limit_error",
    message: "This request would exceed the rate limit for your organization of 50 requests per minute.",
  },
  "server-error": { status: 500, type: "api_error", message: "Internal server error" },
  unauthorized: { status: 401, type: "authentication_error", message: "invalid x-api-key" },
  "bad-request": { status: 400, type: "invalid_request_error", message: "messages: at least one message is required" },
} as const;

async function respondAnthropic(exchange: FakeExchange): Promise<void> {
  const { request, response, options } = exchange;
  const mode = request.mode;
  const requestId = `req_fake${Date.now().toString(36)}`;
  if (mode === "rate-limit" || mode === "server-error" || mode === "unauthorized" || mode === "bad-request") {
    const { status, type, message } = errorBodies[mode];
    const headers: Record<string, string> = { "content-type": "application/json", "request-id": requestId };
    if (mode === "rate-limit") headers["retry-after"] = String(options.retryAfterSeconds);
    response.writeHead(status, headers).end(JSON.stringify({ type: "error", error: { type, message }, request_id: requestId }));
    return;
  }
  const model = modelOf(request.body);
  const event = (name: string, data: unknown): string => `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
  const inputTokens = countPromptCharacters(request.body);

  response.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    connection: "keep-alive",
    "request-id": requestId,
  });
  await exchange.write(
    event("message_start", {
      type: "message_start",
      message: {
        id: "msg_fake0001",
        type: "message",
        role: "assistant",
        model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { input_tokens: inputTokens, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 1 },
      },
    }),
  );
  // Extended thinking, when the request enables it: a thinking block (deltas, then its signature) before the text block.
  const thinking = (request.body as { thinking?: { type?: unknown } } | undefined)?.thinking?.type === "enabled";
  const reasoning = thinking ? reasoningTokens(options.seed, options.reasoningTokenCount) : [];
  const textIndex = thinking ? 1 : 0;
  if (thinking) {
    await exchange.write(event("content_block_start", { type: "content_block_start", index: 0, content_block: { type: "thinking", thinking: "", signature: "" } }));
    await exchange.write(event("ping", { type: "ping" }));
    for (const token of reasoning) {
      if (mode === "slow" && !(await exchange.delay(options.slowTokenDelayMs))) return;
      await exchange.write(event("content_block_delta", { type: "content_block_delta", index: 0, delta: { type: "thinking_delta", thinking: token } }));
    }
    await exchange.write(event("content_block_delta", { type: "content_block_delta", index: 0, delta: { type: "signature_delta", signature: "RXVmYWtlLXNpZ25hdHVyZQ==" } }));
    await exchange.write(event("content_block_stop", { type: "content_block_stop", index: 0 }));
  }
  await exchange.write(event("content_block_start", { type: "content_block_start", index: textIndex, content_block: { type: "text", text: "" } }));
  if (!thinking) await exchange.write(event("ping", { type: "ping" }));

  // A prefilled reply (a trailing assistant turn) streams only its rest.
  const tokens = tokensAfterPrefill(
    mode === "huge" ? hugeTokens(options.seed, options.hugeReplyBytes) : scriptTokens(options.seed, options.tokenCount),
    continuationOf(request.body, false),
  );
  const faulty = mode === "cut" || mode === "reset" || mode === "stall" || mode === "malformed";
  const sendCount = faulty ? Math.min(options.tokensBeforeFault, tokens.length) : tokens.length;
  for (let index = 0; index < sendCount; index++) {
    if (mode === "slow" && index > 0 && !(await exchange.delay(options.slowTokenDelayMs))) return;
    if (!exchange.isOpen()) return;
    await exchange.write(
      event("content_block_delta", {
        type: "content_block_delta",
        index: textIndex,
        delta: { type: "text_delta", text: tokens[index] ?? "" },
      }),
    );
  }
  switch (mode) {
    case "cut":
      // A stop_reason but no message_stop: still not a complete message.
      await exchange.write(event("content_block_stop", { type: "content_block_stop", index: textIndex }));
      await exchange.write(
        event("message_delta", { type: "message_delta", delta: { stop_reason: "end_turn", stop_sequence: null }, usage: { output_tokens: reasoning.length + sendCount } }),
      );
      response.end();
      return;
    case "reset":
      await exchange.flush();
      response.socket?.resetAndDestroy();
      return;
    case "stall":
      await exchange.untilClosed();
      return;
    case "malformed":
      await exchange.write(`event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"oops"\n\n`);
      break;
    default:
      break;
  }
  await exchange.write(event("content_block_stop", { type: "content_block_stop", index: textIndex }));
  await exchange.write(
    event("message_delta", {
      type: "message_delta",
      delta: { stop_reason: "end_turn", stop_sequence: null },
      usage: { output_tokens: reasoning.length + tokens.length },
    }),
  );
  await exchange.write(event("message_stop", { type: "message_stop" }));
  response.end();
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await runFakeServerProcess(startFakeAnthropicServer);
}
