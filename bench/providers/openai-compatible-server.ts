// A fake OpenAI-compatible server for the benchmark, run by bench/run.ts as its own process:
//   BENCH_PORT=0 BENCH_TOKENS_PER_SECOND=20 BENCH_TOKEN_COUNT=60 node bench/providers/openai-compatible-server.ts
// It prints `{"listening":<port>}`; the SDK's baseURL is `http://127.0.0.1:<port>/v1`.
//
// POST /v1/chat/completions with `stream: true` answers in Chat Completions'
// streaming wire format as OpenAI sends it: a role chunk, one
// `data: {chunk}\n\n` per token with `choices[0].delta.content`, a chunk with
// `finish_reason`, a usage chunk when `stream_options.include_usage` is set,
// then `data: [DONE]`. Every token is `⟨µs of CLOCK_MONOTONIC⟩word`, stamped
// when it is written (src/llm/token-stamp.ts), so the load client measures
// provider emit → browser receipt across Sluice's worker, Redis and API.
//
// Pace and length per request: the last user message may say
// `tokens_per_second=<n> token_count=<n>` (the load client writes its plan
// there, so one server serves every rate); otherwise the env defaults apply.
// Opt-in reasoning: `reasoning_count=<n>` sends n words of `delta.reasoning_content` (as vLLM
// and DeepSeek stream it), all at once, before the paced answer; absent, nothing changes.
import type { IncomingMessage, ServerResponse } from "node:http";
import { serveBenchProcess } from "../lib/serve-bench-process.ts";
import { simulatedWords } from "../../src/llm/simulated-text.ts";
import { formatTokenStamp, monotonicMicros } from "../../src/llm/token-stamp.ts";

interface ChatTurn {
  role: "system" | "user" | "assistant";
  content: string;
}

interface ChatBody {
  model?: unknown;
  messages?: unknown;
  stream?: unknown;
  stream_options?: { include_usage?: unknown } | null;
}

const defaults = {
  tokensPerSecond: Number(process.env.BENCH_TOKENS_PER_SECOND ?? 20),
  tokenCount: Number(process.env.BENCH_TOKEN_COUNT ?? 60),
};
const created = Math.floor(Date.now() / 1000);
let nextId = 0;

/** The plan the load client put into its message, e.g. "bench tokens_per_second=20 token_count=60". */
function planOf(messages: readonly ChatTurn[]): { tokensPerSecond: number; tokenCount: number; reasoningCount: number } {
  const lastUser = messages.findLast((turn) => turn.role === "user")?.content ?? "";
  const rate = Number(/tokens_per_second=([\d.]+)/.exec(lastUser)?.[1] ?? Number.NaN);
  const count = Number(/token_count=(\d+)/.exec(lastUser)?.[1] ?? Number.NaN);
  const reasoning = Number(/reasoning_count=(\d+)/.exec(lastUser)?.[1] ?? 0);
  return {
    reasoningCount: Math.min(reasoning, 100_000),
    tokensPerSecond: rate > 0 ? rate : defaults.tokensPerSecond,
    tokenCount: Number.isInteger(count) && count > 0 ? count : defaults.tokenCount,
  };
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    request.setEncoding("utf8");
    request.on("data", (chunk: string) => (text += chunk));
    request.on("end", () => resolve(text));
    request.on("error", reject);
  });
}

function errorBody(response: ServerResponse, status: number, message: string): void {
  response
    .writeHead(status, { "content-type": "application/json" })
    .end(JSON.stringify({ error: { message, type: "invalid_request_error", param: null, code: null } }));
}

async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
  const text = await readBody(request);
  const path = (request.url ?? "/").split("?")[0];
  if (request.method !== "POST" || path !== "/v1/chat/completions") {
    errorBody(response, 404, `Unknown request URL: ${request.method ?? ""} ${path ?? ""}.`);
    return;
  }
  let body: ChatBody;
  try {
    body = JSON.parse(text) as ChatBody;
  } catch {
    errorBody(response, 400, "We could not parse the JSON body of your request.");
    return;
  }
  if (body.stream !== true || !Array.isArray(body.messages)) {
    errorBody(response, 400, "This benchmark server only streams ('stream': true with 'messages').");
    return;
  }
  const messages = body.messages as ChatTurn[];
  const model = typeof body.model === "string" ? body.model : "bench";
  const includeUsage = body.stream_options?.include_usage === true;
  const plan = planOf(messages);
  const words = simulatedWords(messages, plan.tokenCount);
  const id = `chatcmpl-bench${process.pid.toString(36)}${(nextId += 1).toString(36)}`;
  // Everything around the content is the same for every chunk of this completion: built once.
  const head = `data: {"id":"${id}","object":"chat.completion.chunk","created":${created},"model":${JSON.stringify(model)},"system_fingerprint":"fp_bench","choices":[`;
  // OpenAI adds `"usage":null` to every chunk only when the request asked for the usage chunk.
  const tail = includeUsage ? `],"usage":null}\n\n` : `]}\n\n`;
  const contentChunk = (content: string): string =>
    `${head}{"index":0,"delta":{"content":${JSON.stringify(content)}},"logprobs":null,"finish_reason":null}${tail}`;

  response.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    ...(process.env.BENCH_H2C === "true" ? {} : { connection: "keep-alive" }),
    "x-request-id": `req_${id}`,
  });
  response.write(`${head}{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}${tail}`);
  if (plan.reasoningCount > 0) {
    const thoughts = simulatedWords([...messages, { role: "system", content: "reasoning" }], plan.reasoningCount);
    response.write(thoughts.map((word, index) => `${head}{"index":0,"delta":{"content":null,"reasoning_content":${JSON.stringify(index === 0 ? word : ` ${word}`)}},"logprobs":null,"finish_reason":null}${tail}`).join(""));
  }

  // Paced like the simulated provider: token i is due at start + i / rate. When this
  // process lags, every due token goes out in one write, each in its own chunk and stamp.
  const intervalMs = 1000 / plan.tokensPerSecond;
  const startedAt = performance.now();
  let emitted = 0;
  let timer: NodeJS.Timeout | undefined;
  let open = true;
  response.once("close", () => {
    open = false;
    clearTimeout(timer);
  });
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      if (!open) return resolve();
      const due = Math.min(words.length, Math.floor((performance.now() - startedAt) / intervalMs) + 1);
      if (due > emitted) {
        const stamp = formatTokenStamp(monotonicMicros());
        let out = "";
        for (; emitted < due; emitted += 1) out += contentChunk(`${emitted === 0 ? "" : " "}${stamp}${words[emitted] ?? ""}`);
        response.write(out);
      }
      if (emitted >= words.length) return resolve();
      timer = setTimeout(tick, Math.max(0, startedAt + emitted * intervalMs - performance.now()));
    };
    tick();
  });
  if (!open) return;
  let end = `${head}{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}${tail}`;
  if (includeUsage) {
    const promptTokens = Math.ceil(messages.reduce((total, turn) => total + String(turn.content).length, 0) / 4);
    const completionTokens = plan.reasoningCount + words.length;
    const usage = { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens };
    end += `${head}],"usage":${JSON.stringify(usage)}}\n\n`;
  }
  response.end(`${end}data: [DONE]\n\n`);
}

await serveBenchProcess({ handle, onError: (response, error) => errorBody(response, 500, String(error)) });
