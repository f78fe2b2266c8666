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
 * A local server speaking OpenAI's Chat Completions streaming wire format
 * (`data: {chunk}\n\n` … `data: [DONE]`), so the real `openai` SDK runs against it.
 * `url` is the SDK's baseURL (ends in /v1). Model `fake-<mode>` picks a fault per request.
 *
 * As a process: `node test/support/providers/fake-openai-server.ts --port N [--mode M] [--seed S]` prints its URL.
 */
export function startFakeOpenAiServer(options: FakeServerOptions = {}): Promise<FakeProviderServer> {
  return startFakeServer({ path: "/v1/chat/completions", basePath: "/v1", respond: respondOpenAi }, options);
}

// Bodies as the OpenAI API sends them.
const errorBodies = {
  "rate-limit": {
    status: 429,
    body: {
      error: {
        message: "Rate limit reached for requests. Please try again in 7s.",
        type: "requests",
        param: null,
        code: "rate_limit_exceeded",
      },
    },
  },
  "server-error": {
    status: 500,
    body: {
      error: {
        message: "The server had an error while processing your request. Sorry about that!",
        type: "server_error",
        param: null,
        code: null,
      },
    },
  },
  unauthorized: {
    status: 401,
    body: {
      error: {
        message: "Incorrect API key provided: sk-fake. You can find your API key at https://platform.openai.com/account/api-keys.",
        type: "invalid_request_error",
        param: null,
        code: "invalid_api_key",
      },
    },
  },
  "bad-request": {
    status: 400,
    body: {
      error: {
        message: "Invalid value for 'messages': the conversation is empty.",
        type: "invalid_request_error",
        param: "messages",
        code: null,
      },
    },
  },
} as const;

async function respondOpenAi(exchange: FakeExchange): Promise<void> {
  const { request, response, options } = exchange;
  const mode = request.mode;
  const requestId = `req_${request.path.length}${Date.now().toString(36)}`;
  if (mode === "rate-limit" || mode === "server-error" || mode === "unauthorized" || mode === "bad-request") {
    const { status, body } = errorBodies[mode];
    const headers: Record<string, string> = { "content-type": "application/json", "x-request-id": requestId };
    if (mode === "rate-limit") headers["retry-after"] = String(options.retryAfterSeconds);
    response.writeHead(status, headers).end(JSON.stringify(body));
    return;
  }
  const model = modelOf(request.body);
  const id = "chatcmpl-fake0001";
  const created = 1_700_000_000;
  const chunk = (choices: unknown[], usage: unknown = null): string =>
    `data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model, system_fingerprint: "fp_fake", choices, usage })}\n\n`;
  const contentChunk = (content: string): string =>
    chunk([{ index: 0, delta: { content }, logprobs: null, finish_reason: null }]);

  response.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    connection: "keep-alive",
    "x-request-id": requestId,
  });
  await exchange.write(chunk([{ index: 0, delta: { role: "assistant", content: "", refusal: null }, logprobs: null, finish_reason: null }]));

  // A continued reply (a trailing assistant turn with continue_final_message) streams only its rest, without reasoning.
  const prefill = continuationOf(request.body, true);
  // Reasoning first, as vLLM, DeepSeek and Ollama stream it: a delta field of its own, content null.
  const reasoning = options.reasoningField === undefined || prefill !== undefined ? [] : reasoningTokens(options.seed, options.reasoningTokenCount);
  for (const token of reasoning) {
    if (mode === "slow" && !(await exchange.delay(options.slowTokenDelayMs))) return;
    await exchange.write(chunk([{ index: 0, delta: { content: null, [options.reasoningField ?? "reasoning"]: token }, logprobs: null, finish_reason: null }]));
  }
  const tokens = tokensAfterPrefill(
    mode === "huge" ? hugeTokens(options.seed, options.hugeReplyBytes) : scriptTokens(options.seed, options.tokenCount),
    prefill,
  );
  const faulty = mode === "cut" || mode === "reset" || mode === "stall" || mode === "malformed";
  const sendCount = faulty ? Math.min(options.tokensBeforeFault, tokens.length) : tokens.length;
  for (let index = 0; index < sendCount; index++) {
    if (mode === "slow" && index > 0 && !(await exchange.delay(options.slowTokenDelayMs))) return;
    if (!exchange.isOpen()) return;
    await exchange.write(contentChunk(tokens[index] ?? ""));
  }
  switch (mode) {
    case "cut":
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
      await exchange.write(`data: {"id":"${id}","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"oops"\n\n`);
      await exchange.write(contentChunk(" after"));
      break;
    default:
      await exchange.write(chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: "stop" }]));
      await exchange.write(
        chunk([], {
          prompt_tokens: countPromptCharacters(request.body),
          completion_tokens: reasoning.length + tokens.length,
          total_tokens: countPromptCharacters(request.body) + reasoning.length + tokens.length,
        }),
      );
  }
  await exchange.write("data: [DONE]\n\n");
  response.end();
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await runFakeServerProcess(startFakeOpenAiServer);
}
