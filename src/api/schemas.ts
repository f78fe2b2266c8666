import { z } from "zod";
import { messageRoles, messageStatuses } from "../storage/schema.ts";

/**
 * Acceptable text for every string a client sends (PROTOCOL.md section 9): no
 * U+0000, which a PostgreSQL `text` column refuses, and well-formed UTF-16, i.e.
 * no lone surrogate, which UTF-8 cannot carry (the driver would store U+FFFD,
 * so the row would differ from what was accepted). Checked by every request
 * schema, so such text is a 400 VALIDATION_FAILED and never reaches SQL.
 */
export function isStorableText(value: string): boolean {
  return !value.includes("\u0000") && value.isWellFormed();
}

const unstorableTextMessage = "Text may not contain U+0000 or unpaired UTF-16 surrogates.";

/**
 * A string field of a request: `text().trim().max(200)`. Every request string
 * goes through this (or `emailAddress`), never a bare `z.string()`.
 */
export function text(): z.ZodString {
  return z.string().refine(isStorableText, unstorableTextMessage);
}

export const emailAddress = z.email().max(254).refine(isStorableText, unstorableTextMessage);

/** Shared response and parameter schemas; route files hold their own request bodies. */
export const errorResponse = z.object({
  error: z.object({ code: z.string(), message: z.string() }).catchall(z.unknown()),
}).meta({ id: "Error" });

export const userView = z.object({ id: z.uuid(), email: z.string() });

export const messageView = z.object({
  id: z.uuid(),
  parentId: z.uuid().nullable().describe("The message this one follows in the conversation's tree (its question, or the reply before it); null for a first message"),
  role: z.enum(messageRoles),
  content: z.string(),
  status: z.enum(messageStatuses),
  createdAt: z.string(),
  completedAt: z.string().nullable(),
  model: z.string().nullable(),
  taskId: z.string().nullable(),
  usage: z.object({ inputTokens: z.number(), outputTokens: z.number() }).nullable(),
  error: z.object({ code: z.string(), message: z.string() }).nullable(),
  reasoning: z
    .object({
      text: z.string(),
      durationMs: z.number().int().nullable().describe("From the first reasoning delta to the answer's first, as the worker saw it"),
    })
    .nullable()
    .describe("The model's visible reasoning before `content`, once the reply is saved; null when it gave none. Never sent back to the model."),
});

export const conversationView = z.object({
  id: z.uuid(),
  title: z.string().nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
});

const siblings = z
  .object({
    index: z.number().int().describe("This message's place among its versions, oldest first (0-based)"),
    count: z.number().int(),
    ids: z.array(z.uuid()).describe("The versions' ids, oldest first; pick one with POST /api/conversations/{id}/branch"),
  })
  .describe("The versions of this message: messages with the same parent (an edit, a regenerate). count 1: no other version.");
/** GET /api/conversations/:id and POST …/branch. */
export const conversationDetail = conversationView.extend({
  messages: z
    .array(messageView.extend({ siblings }))
    .describe("A page of the active path, oldest first: its newest messages, or those before `cursor`"),
  activeGeneration: z.object({ taskId: z.string(), messageId: z.uuid(), streamUrl: z.string() }).nullable(),
  hasMore: z.boolean().describe("Older messages exist on the active path"),
  nextCursor: z.string().nullable().describe("Pass as `cursor` for the page of older messages; null on the oldest page"),
});

export const generationAccepted = z.object({
  // An Idempotency-Key replay answers the response recorded before `reasoning` and `parentId` existed.
  userMessage: messageView.partial({ reasoning: true, parentId: true }).optional(),
  assistantMessage: z.object({ id: z.uuid(), status: messageView.shape.status }),
  taskId: z.string(),
  streamUrl: z.string(),
});

/**
 * Ids in paths: a malformed id is simply not found (404), exactly like another
 * user's, so the routes check the exact format (`isUuid`, `isTaskId`) before
 * any query and answer NOT_FOUND / STREAM_NOT_FOUND. Longer than Fastify's
 * maxParamLength (100) is 414 URL_TOO_LONG before the route runs.
 */
/** README "Idempotency policy": 1–200 printable ASCII characters, per user, on every route that starts a generation. */
export const idempotencyHeaders = z.object({ "idempotency-key": z.string().min(1).max(200).regex(/^[\x21-\x7e]+$/).optional() });

export const idParams = z.object({ id: z.string().max(64) });
export const taskParams = z.object({ taskId: z.string().max(64) });

export const isUuid = (value: string): boolean => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value);

/** `task_` and 16 random bytes in base64url (src/auth/opaque-tokens.ts `createTaskId`). */
export const isTaskId = (value: string): boolean => /^task_[A-Za-z0-9_-]{22}$/.test(value);

/** A page cursor as the server writes it (base64url); what it decodes to is checked by `decodePageCursor`. */
export const pageCursor = z.string().max(200).regex(/^[A-Za-z0-9_-]+$/, "The page cursor is not valid.");

export const standardErrors = {
  400: errorResponse,
  401: errorResponse,
  404: errorResponse,
  409: errorResponse,
  413: errorResponse,
  422: errorResponse,
  429: errorResponse,
  503: errorResponse,
};
