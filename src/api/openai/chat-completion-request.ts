import { z } from "zod";
import type { CompletionRequest } from "../../chat/chat-completions-service.ts";
import { text } from "../schemas.ts";
import { commonRequestFields, optionalNumber } from "./common-request-fields.ts";
import { foldInstructions } from "./fold-instructions.ts";

const textPart = z.strictObject({ type: z.literal("text"), text: text() });
const content = z.union([text(), z.array(textPart).min(1).max(100)]);

const message = z.discriminatedUnion("role", [
  z.strictObject({ role: z.enum(["system", "developer"]), content, name: text().max(100).optional() }),
  z.strictObject({ role: z.literal("user"), content, name: text().max(100).optional() }),
  z.strictObject({ role: z.literal("assistant"), content, name: text().max(100).optional(), refusal: text().nullish() }),
]);

/**
 * `POST /v1/chat/completions`. Sampling parameters Sluice does not apply (the provider's
 * defaults are used) are accepted and ignored, so existing code runs unchanged; parameters that
 * would change what comes back (`n` > 1, tools, audio, logprobs, JSON mode) and names OpenAI
 * does not have are a 400, as every other Sluice route answers unknown fields.
 */
export const chatCompletionBody = z.strictObject({
  ...commonRequestFields,
  messages: z.array(message).min(1).max(1_000),
  stream_options: z.strictObject({ include_usage: z.boolean().optional(), include_obfuscation: z.boolean().optional() }).nullish(),
  // Accepted and ignored (README "Use Sluice from the OpenAI SDK").
  max_tokens: optionalNumber,
  max_completion_tokens: optionalNumber,
  frequency_penalty: optionalNumber,
  presence_penalty: optionalNumber,
  seed: optionalNumber,
  reasoning_effort: text().max(32).nullish(),
  stop: z.union([text(), z.array(text()).max(4)]).nullish(),
  n: z.literal(1).nullish(),
  response_format: z.strictObject({ type: z.literal("text") }).nullish(),
  logprobs: z.literal(false).nullish(),
});

export type ChatCompletionBody = z.infer<typeof chatCompletionBody>;

const flatten = (value: z.infer<typeof content>): string => (typeof value === "string" ? value : value.map((part) => part.text).join(""));

/** The body as one Sluice turn (fold-instructions.ts); text parts are joined. */
export function toCompletionRequest(body: ChatCompletionBody): CompletionRequest {
  const turns = body.messages.map((entry) => ({ role: entry.role, content: flatten(entry.content) }));
  return foldInstructions({ model: body.model, turns, store: body.store === true, param: "messages" });
}
