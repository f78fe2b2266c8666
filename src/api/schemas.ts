import { z } from "zod";

/** Shared response and parameter schemas; route files hold their own request bodies. */
export const errorResponse = z.object({
  error: z.object({ code: z.string(), message: z.string() }).catchall(z.unknown()),
}).meta({ id: "Error" });

export const userView = z.object({ id: z.uuid(), email: z.string() });

export const messageView = z.object({
  id: z.uuid(),
  role: z.enum(["user", "assistant"]),
  content: z.string(),
  status: z.enum(["pending", "streaming", "completed", "cancelled", "failed"]),
  createdAt: z.string(),
  completedAt: z.string().nullable(),
  model: z.string().nullable(),
  taskId: z.string().nullable(),
  usage: z.object({ inputTokens: z.number(), outputTokens: z.number() }).nullable(),
  error: z.object({ code: z.string(), message: z.string() }).nullable(),
});

export const conversationView = z.object({
  id: z.uuid(),
  title: z.string().nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
});

export const generationAccepted = z.object({
  userMessage: messageView.optional(),
  assistantMessage: z.object({ id: z.uuid(), status: messageView.shape.status }),
  taskId: z.string(),
  streamUrl: z.string(),
});

/** Ids in paths: a malformed id is simply not found (404), exactly like another user's. */
export const idParams = z.object({ id: z.string().max(64) });
export const taskParams = z.object({ taskId: z.string().max(64) });

export const isUuid = (value: string): boolean => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value);

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
