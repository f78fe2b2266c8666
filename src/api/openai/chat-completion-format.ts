import { errorCatalog, type ErrorCode } from "../../errors/catalog.ts";
import type { EndEvent, LogEntry } from "../../streaming/events.ts";
import { openAiErrorBody, type OpenAiErrorBody } from "./openai-errors.ts";

/**
 * The one log of a generation presented as OpenAI Chat Completions (PROTOCOL.md section 10):
 * `start` → the role chunk, `text-delta` → a content chunk, `reasoning-delta` → a chunk with
 * `delta.reasoning_content` (as vLLM and DeepSeek send it), `usage` → remembered, `end` →
 * the finish chunk, the usage chunk (with `stream_options.include_usage`) and `[DONE]`;
 * a failed `end` → an `{"error":…}` event, which the SDK throws as an APIError.
 */
export interface CompletionIdentity {
  /** `chatcmpl-<taskId>`: the call's task id, so the id finds the generation again. */
  id: string;
  /** Unix seconds. */
  created: number;
  model: string;
}

interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

const toUsage = (inputTokens: number, outputTokens: number): Usage => ({ prompt_tokens: inputTokens, completion_tokens: outputTokens, total_tokens: inputTokens + outputTokens });

export const completionIdOf = (taskId: string): string => `chatcmpl-${taskId}`;

/** The task id inside a completion id, or undefined when the id is not one Sluice made. */
export function taskIdOfCompletion(id: string): string | undefined {
  const match = /^chatcmpl-(task_[A-Za-z0-9_-]{22})$/.exec(id);
  return match?.[1];
}

/** A failed `end` as an OpenAI error, with the catalog's status for its code (500 for an unknown one). */
export function generationFailure(end: EndEvent): { status: number; body: OpenAiErrorBody } {
  const code = end.error?.code ?? "INTERNAL";
  const status = code in errorCatalog ? errorCatalog[code as ErrorCode].status : 500;
  return { status, body: openAiErrorBody(status, end.error?.message ?? "The generation failed.", code) };
}

/**
 * Streaming: each call of `push` returns the SSE frames (`data: …\n\n`) for the entries, in
 * order; `finished` turns true after `[DONE]` or an error frame. A `reset` (a new attempt after
 * a worker died, PROTOCOL.md 4.3) before any text is invisible; after text was sent it cannot
 * be taken back in this format, so the stream ends with an error (the saved reply is the new
 * attempt's, fetched with `GET /v1/chat/completions/{id}` when stored).
 */
export function createChunkStream(identity: CompletionIdentity, options: { includeUsage: boolean }): { push(entries: readonly LogEntry[]): string; readonly finished: boolean } {
  let roleSent = false;
  let textSent = false;
  let finished = false;
  let usage: Usage | null = null;
  const frame = (value: unknown): string => `data: ${JSON.stringify(value)}\n\n`;
  const chunk = (delta: Record<string, unknown>, finishReason: string | null): string =>
    frame({
      id: identity.id,
      object: "chat.completion.chunk",
      created: identity.created,
      model: identity.model,
      system_fingerprint: null,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
      ...(options.includeUsage ? { usage: null } : {}),
    });
  const roleChunk = (): string => {
    if (roleSent) return "";
    roleSent = true;
    return chunk({ role: "assistant", content: "" }, null);
  };
  const pushOne = (entry: LogEntry): string => {
    const { event } = entry;
    switch (event.type) {
      case "start":
        return roleChunk();
      case "reset":
        usage = null;
        if (!textSent) return "";
        finished = true;
        return frame(openAiErrorBody(500, "The generation was restarted after part of its text was sent; retry the request.", "GENERATION_RESTARTED"));
      case "text-delta":
      case "reasoning-delta":
        if (event.delta === "") return "";
        textSent = true;
        return roleChunk() + chunk(event.type === "text-delta" ? { content: event.delta } : { reasoning_content: event.delta }, null);
      case "usage":
        usage = toUsage(event.inputTokens, event.outputTokens);
        return "";
      case "end": {
        finished = true;
        if (event.status === "failed") return frame(generationFailure(event).body);
        const usageChunk = options.includeUsage
          ? frame({ id: identity.id, object: "chat.completion.chunk", created: identity.created, model: identity.model, system_fingerprint: null, choices: [], usage: usage ?? toUsage(0, 0) })
          : "";
        return roleChunk() + chunk({}, "stop") + usageChunk + "data: [DONE]\n\n";
      }
      default:
        // Future types have no Chat Completions counterpart.
        return "";
    }
  };
  return {
    push: (entries) => {
      let text = "";
      for (const entry of entries) {
        if (finished) break;
        text += pushOne(entry);
      }
      return text;
    },
    get finished() {
      return finished;
    },
  };
}

/** Non-streaming: the text and reasoning after the last `start`/`reset` and the last usage, until `end`. */
export function createCompletionCollector(): {
  push(entries: readonly LogEntry[]): void;
  readonly end: EndEvent | undefined;
  readonly text: string;
  readonly reasoning: string;
  readonly usage: Usage | null;
} {
  let text = "";
  let reasoning = "";
  let usage: Usage | null = null;
  let end: EndEvent | undefined;
  return {
    push: (entries) => {
      for (const { event } of entries) {
        if (end) return;
        if (event.type === "reset") {
          text = "";
          reasoning = "";
          usage = null;
        } else if (event.type === "text-delta") text += event.delta;
        else if (event.type === "reasoning-delta") reasoning += event.delta;
        else if (event.type === "usage") usage = toUsage(event.inputTokens, event.outputTokens);
        else if (event.type === "end") end = event;
      }
    },
    get end() {
      return end;
    },
    get text() {
      return text;
    },
    get reasoning() {
      return reasoning;
    },
    get usage() {
      return usage;
    },
  };
}

/** A `chat.completion` object, as `POST` (non-streaming) and `GET /v1/chat/completions/{id}` answer. */
export function chatCompletion(identity: CompletionIdentity, reply: { text: string; reasoning: string; usage: Usage | null; finishReason: string }): Record<string, unknown> {
  // `reasoning_content` only when there is some, as vLLM and DeepSeek answer.
  const reasoning = reply.reasoning === "" ? {} : { reasoning_content: reply.reasoning };
  return {
    id: identity.id,
    object: "chat.completion",
    created: identity.created,
    model: identity.model,
    system_fingerprint: null,
    choices: [{ index: 0, message: { role: "assistant", content: reply.text, ...reasoning, refusal: null, annotations: [] }, logprobs: null, finish_reason: reply.finishReason }],
    usage: reply.usage ?? toUsage(0, 0),
  };
}

export { toUsage };
