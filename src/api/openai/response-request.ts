import { z } from "zod";
import type { CompletionRequest } from "../../chat/chat-completions-service.ts";
import { SluiceError } from "../../errors/catalog.ts";
import { text } from "../schemas.ts";

const part = z.strictObject({ type: z.enum(["input_text", "output_text"]), text: text(), annotations: z.array(z.unknown()).max(0).optional() });
const inputMessage = z.strictObject({
  type: z.literal("message").optional(),
  role: z.enum(["user", "assistant", "system", "developer"]),
  content: z.union([text(), z.array(part).min(1).max(100)]),
  id: text().max(100).optional(),
  status: text().max(32).optional(),
});
const optionalNumber = z.number().nullish();

/**
 * `POST /v1/responses`: text in, text out. Sampling parameters are accepted and ignored, as for
 * Chat Completions; tools, `previous_response_id`, images and files are a 400.
 */
export const responseBody = z.strictObject({
  model: text().min(1).max(200),
  input: z.union([text().min(1), z.array(inputMessage).min(1).max(1_000)]),
  instructions: text().nullish(),
  background: z.boolean().nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.strictObject({ include_obfuscation: z.boolean().optional() }).nullish(),
  store: z.boolean().nullish(),
  metadata: z.record(text().max(64), text().max(512)).nullish(),
  temperature: optionalNumber,
  top_p: optionalNumber,
  max_output_tokens: optionalNumber,
  user: text().max(256).optional(),
  safety_identifier: text().max(256).optional(),
  prompt_cache_key: text().max(256).optional(),
  service_tier: text().max(32).nullish(),
  truncation: z.enum(["auto", "disabled"]).nullish(),
  text: z.strictObject({ format: z.strictObject({ type: z.literal("text") }).optional(), verbosity: text().max(16).nullish() }).nullish(),
  parallel_tool_calls: z.boolean().nullish(),
});

export type ResponseBody = z.infer<typeof responseBody>;

/** As for Chat Completions (chat-completion-request.ts): the last input must be the user's; instructions go before the first user message. */
export function toResponseRequest(body: ResponseBody): CompletionRequest {
  const store = body.store ?? true;
  if (body.background === true && !store) {
    throw new SluiceError("VALIDATION_FAILED", "A background response must be stored (store: true).", { details: { issues: [{ path: "body/store", message: "background needs store" }] } });
  }
  const items = typeof body.input === "string" ? [{ role: "user" as const, content: body.input }] : body.input;
  const instructions = body.instructions ? [body.instructions] : [];
  const turns: Array<{ role: "user" | "assistant"; content: string }> = [];
  for (const item of items) {
    const content = typeof item.content === "string" ? item.content : item.content.map((entry) => entry.text).join("");
    if (item.role === "system" || item.role === "developer") instructions.push(content);
    else turns.push({ role: item.role, content });
  }
  if (turns.at(-1)?.role !== "user" || items.at(-1)?.role !== "user") {
    throw new SluiceError("VALIDATION_FAILED", "The last input item must have the role \"user\".", { details: { issues: [{ path: "body/input", message: "the last item must be the user's" }] } });
  }
  const firstUser = turns.findIndex((turn) => turn.role === "user");
  const prefix = instructions.filter((instruction) => instruction !== "").join("\n\n");
  const withInstructions = turns.map((turn, index) => (index === firstUser && prefix !== "" ? { ...turn, content: `${prefix}\n\n${turn.content}` } : turn));
  const final = withInstructions.pop();
  return { model: body.model, history: withInstructions, content: final?.content ?? "", store };
}
