import { z } from "zod";
import type { CompletionRequest } from "../../chat/chat-completions-service.ts";
import { SluiceError } from "../../errors/catalog.ts";
import { text } from "../schemas.ts";
import { commonRequestFields, optionalNumber } from "./common-request-fields.ts";
import { foldInstructions } from "./fold-instructions.ts";

const part = z.strictObject({ type: z.enum(["input_text", "output_text"]), text: text(), annotations: z.array(z.unknown()).max(0).optional() });
const inputMessage = z.strictObject({
  type: z.literal("message").optional(),
  role: z.enum(["user", "assistant", "system", "developer"]),
  content: z.union([text(), z.array(part).min(1).max(100)]),
  id: text().max(100).optional(),
  status: text().max(32).optional(),
});

/**
 * `POST /v1/responses`: text in, text out. Sampling parameters are accepted and ignored, as for
 * Chat Completions; tools, `previous_response_id`, images and files are a 400.
 */
export const responseBody = z.strictObject({
  ...commonRequestFields,
  input: z.union([text().min(1), z.array(inputMessage).min(1).max(1_000)]),
  instructions: text().nullish(),
  background: z.boolean().nullish(),
  stream_options: z.strictObject({ include_obfuscation: z.boolean().optional() }).nullish(),
  max_output_tokens: optionalNumber,
  truncation: z.enum(["auto", "disabled"]).nullish(),
  text: z.strictObject({ format: z.strictObject({ type: z.literal("text") }).optional(), verbosity: text().max(16).nullish() }).nullish(),
  parallel_tool_calls: z.boolean().nullish(),
});

export type ResponseBody = z.infer<typeof responseBody>;

/** As for Chat Completions (fold-instructions.ts); `instructions` come first, like a developer message. */
export function toResponseRequest(body: ResponseBody): CompletionRequest {
  const store = body.store ?? true;
  if (body.background === true && !store) {
    throw new SluiceError("VALIDATION_FAILED", "A background response must be stored (store: true).", { details: { issues: [{ path: "body/store", message: "background needs store" }] } });
  }
  const items = typeof body.input === "string" ? [{ role: "user" as const, content: body.input }] : body.input;
  const turns = [
    ...(body.instructions ? [{ role: "developer" as const, content: body.instructions }] : []),
    ...items.map((item) => ({ role: item.role, content: typeof item.content === "string" ? item.content : item.content.map((entry) => entry.text).join("") })),
  ];
  return foldInstructions({ model: body.model, turns, store, param: "input" });
}
