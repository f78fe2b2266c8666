import { z } from "zod";
import type { CompletionRequest } from "../../chat/chat-completions-service.ts";
import { SluiceError } from "../../errors/catalog.ts";
import { text } from "../schemas.ts";

const textPart = z.strictObject({ type: z.literal("text"), text: text() });
const content = z.union([text(), z.array(textPart).min(1).max(100)]);

const message = z.discriminatedUnion("role", [
  z.strictObject({ role: z.enum(["system", "developer"]), content, name: text().max(100).optional() }),
  z.strictObject({ role: z.literal("user"), content, name: text().max(100).optional() }),
  z.strictObject({ role: z.literal("assistant"), content, name: text().max(100).optional(), refusal: text().nullish() }),
]);

const optionalNumber = z.number().nullish();

/**
 * `POST /v1/chat/completions`. Sampling parameters Sluice does not apply (the provider's
 * defaults are used) are accepted and ignored, so existing code runs unchanged; parameters that
 * would change what comes back (`n` > 1, tools, audio, logprobs, JSON mode) and names OpenAI
 * does not have are a 400, as every other Sluice route answers unknown fields.
 */
export const chatCompletionBody = z.strictObject({
  model: text().min(1).max(200),
  messages: z.array(message).min(1).max(1_000),
  stream: z.boolean().nullish(),
  stream_options: z.strictObject({ include_usage: z.boolean().optional(), include_obfuscation: z.boolean().optional() }).nullish(),
  store: z.boolean().nullish(),
  metadata: z.record(text().max(64), text().max(512)).nullish(),
  // Accepted and ignored (README "Use Sluice from the OpenAI SDK").
  temperature: optionalNumber,
  top_p: optionalNumber,
  max_tokens: optionalNumber,
  max_completion_tokens: optionalNumber,
  frequency_penalty: optionalNumber,
  presence_penalty: optionalNumber,
  seed: optionalNumber,
  user: text().max(256).optional(),
  safety_identifier: text().max(256).optional(),
  prompt_cache_key: text().max(256).optional(),
  service_tier: text().max(32).nullish(),
  reasoning_effort: text().max(32).nullish(),
  stop: z.union([text(), z.array(text()).max(4)]).nullish(),
  n: z.literal(1).nullish(),
  response_format: z.strictObject({ type: z.literal("text") }).nullish(),
  logprobs: z.literal(false).nullish(),
});

export type ChatCompletionBody = z.infer<typeof chatCompletionBody>;

const flatten = (value: z.infer<typeof content>): string => (typeof value === "string" ? value : value.map((part) => part.text).join(""));

/**
 * The body as one Sluice turn: the last message must be the user's; earlier user and assistant
 * messages become the conversation's history. Sluice's worker sends only the account's system
 * prompt as a system message, so `system` and `developer` text is put before the first user
 * message (separated by a blank line), where every provider reads it.
 */
export function toCompletionRequest(body: ChatCompletionBody): CompletionRequest {
  const instructions: string[] = [];
  const turns: Array<{ role: "user" | "assistant"; content: string }> = [];
  for (const entry of body.messages) {
    const textOf = flatten(entry.content);
    if (entry.role === "system" || entry.role === "developer") instructions.push(textOf);
    else turns.push({ role: entry.role, content: textOf });
  }
  const last = turns.at(-1);
  if (!last || last.role !== "user" || body.messages.at(-1)?.role !== "user") {
    throw new SluiceError("VALIDATION_FAILED", "The last message must have the role \"user\".", { details: { issues: [{ path: "body/messages", message: "the last message must be the user's" }] } });
  }
  const firstUser = turns.findIndex((turn) => turn.role === "user");
  const prefix = instructions.filter((instruction) => instruction !== "").join("\n\n");
  const withInstructions = turns.map((turn, index) => (index === firstUser && prefix !== "" ? { ...turn, content: `${prefix}\n\n${turn.content}` } : turn));
  const final = withInstructions.pop();
  return { model: body.model, history: withInstructions, content: final?.content ?? "", store: body.store === true };
}
