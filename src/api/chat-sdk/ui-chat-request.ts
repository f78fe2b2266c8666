import { z } from "zod";
import { SluiceError } from "../../errors/catalog.ts";
import { isStorableText, text } from "../schemas.ts";

/** The client's chat id (useChat's `id`), in the body and in `/api/chat/:id/stream`; longer is 414 in a path. */
export const chatId = text().min(1).max(100);

// Past messages are the client's copy of a history Sluice keeps itself: only their shape is
// checked (the body limit bounds their size), and their text is never read.
const uiMessagePart = z.looseObject({ type: z.string().max(200) });
const uiMessage = z.looseObject({
  id: z.string().max(200),
  role: z.enum(["system", "user", "assistant"]),
  parts: z.array(uiMessagePart).max(10_000),
});

/**
 * DefaultChatTransport's body (`{ ...body, id, messages, trigger, messageId }`). Unknown fields
 * are refused as on every route; `model` (from useChat's `body` option) picks an allowed model.
 */
export const uiChatBody = z.strictObject({
  id: chatId,
  messages: z.array(uiMessage).min(1).max(10_000),
  trigger: z.enum(["submit-message", "regenerate-message"]),
  messageId: z.string().max(200).optional(),
  model: text().max(200).optional(),
});

export type UiChatBody = z.infer<typeof uiChatBody>;

/**
 * The new user message of a `submit-message`: the text of the last message, which must be the
 * user's and made of text parts. A `messageId` there means the client edited a sent message
 * (useChat's `sendMessage({ messageId })`); Sluice keeps the history and refuses it.
 */
export function newUserMessage(body: UiChatBody): string {
  if (body.messageId !== undefined) {
    throw new SluiceError("VALIDATION_FAILED", "Sluice keeps the chat's history: a sent message cannot be edited. Send a new message, or regenerate the last reply.");
  }
  const last = body.messages.at(-1);
  if (last?.role !== "user") throw new SluiceError("VALIDATION_FAILED", "The last message must be the user's new message.");
  let content = "";
  for (const part of last.parts) {
    if (part.type !== "text" || typeof part.text !== "string") {
      throw new SluiceError("VALIDATION_FAILED", `Only text parts can be sent; the message has a "${part.type.slice(0, 50)}" part.`);
    }
    content += part.text;
  }
  if (!isStorableText(content)) throw new SluiceError("VALIDATION_FAILED", "Text may not contain U+0000 or unpaired UTF-16 surrogates.");
  if (content.trim() === "") throw new SluiceError("VALIDATION_FAILED", "The message is empty.");
  return content;
}
