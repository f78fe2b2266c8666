import { z } from "zod";
import type { ConversationsService } from "../../chat/conversations-service.ts";
import type { GenerationsService } from "../../chat/generations-service.ts";
import { SluiceError } from "../../errors/catalog.ts";
import type { App } from "../app-type.ts";
import { currentUser, type RequireUser } from "../auth/authenticate.ts";
import { conversationView, generationAccepted, idParams, isUuid, messageView, pageCursor, standardErrors, text } from "../schemas.ts";

const conversationDetail = conversationView.extend({
  messages: z.array(messageView),
  activeGeneration: z.object({ taskId: z.string(), messageId: z.uuid(), streamUrl: z.string() }).nullable(),
});
const listQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(100).default(30),
  cursor: pageCursor.optional(),
});
const searchQuery = z.strictObject({
  q: text().trim().min(1, "Type something to search for.").max(200),
  limit: z.coerce.number().int().min(1).max(50).default(20),
  cursor: pageCursor.optional(),
});
const searchResult = z.object({
  conversation: conversationView,
  message: z
    .object({
      id: z.uuid(),
      role: messageView.shape.role,
      createdAt: z.string(),
      snippet: z.string(),
      highlights: z.array(z.object({ start: z.number().int(), end: z.number().int() })),
    })
    .nullable(),
});
const idempotencyHeaders = z.object({ "idempotency-key": z.string().min(1).max(200).regex(/^[\x21-\x7e]+$/).optional() });

export function registerConversationRoutes(
  app: App,
  dependencies: { conversations: ConversationsService; generations: GenerationsService; requireUser: RequireUser; messageChars: number },
): void {
  const { conversations, generations, requireUser } = dependencies;
  const conversationId = (id: string): string => {
    if (!isUuid(id)) throw new SluiceError("NOT_FOUND", "No such conversation.");
    return id;
  };
  const tags = ["conversations"];
  // Optional bodies are `.nullish()`: Fastify validates a POST sent without a body as `null`.

  app.post(
    "/api/conversations",
    {
      onRequest: requireUser,
      schema: { tags, summary: "Create a conversation", body: z.strictObject({ title: text().trim().min(1).max(200).optional() }).nullish(), response: { 201: conversationView, ...standardErrors } },
    },
    async (request, reply) => reply.status(201).send(await conversations.create(currentUser(request).id, request.body?.title ?? null)),
  );
  app.get(
    "/api/conversations",
    { onRequest: requireUser, schema: { tags, summary: "List conversations, newest activity first", querystring: listQuery, response: { 200: z.object({ items: z.array(conversationView), nextCursor: z.string().nullable() }), ...standardErrors } } },
    async (request) => conversations.list(currentUser(request).id, { limit: request.query.limit, cursor: request.query.cursor }),
  );
  app.get(
    "/api/conversations/search",
    {
      onRequest: requireUser,
      schema: {
        tags,
        summary: "Search your conversations' titles and message text",
        description:
          "PostgreSQL full-text search ('simple' configuration: whole words, no stemming, any language) in web-search syntax: words, \"a phrase\", `or`, `-word`. " +
          "Newest activity first, keyset-paged with the listing's cursor. Each result names the newest matching message with a snippet " +
          "(highlights are [start, end) offsets into it), or `message: null` when only the title matched.",
        querystring: searchQuery,
        response: { 200: z.object({ items: z.array(searchResult), nextCursor: z.string().nullable() }), ...standardErrors },
      },
    },
    async (request) => conversations.search(currentUser(request).id, { query: request.query.q, limit: request.query.limit, cursor: request.query.cursor }),
  );
  app.get(
    "/api/conversations/:id",
    { onRequest: requireUser, schema: { tags, summary: "A conversation with its messages in order", params: idParams, response: { 200: conversationDetail, ...standardErrors } } },
    async (request) => conversations.get(currentUser(request).id, conversationId(request.params.id)),
  );
  app.patch(
    "/api/conversations/:id",
    { onRequest: requireUser, schema: { tags, summary: "Rename a conversation", params: idParams, body: z.strictObject({ title: text().trim().min(1).max(200) }), response: { 200: conversationView, ...standardErrors } } },
    async (request) => conversations.rename(currentUser(request).id, conversationId(request.params.id), request.body.title),
  );
  app.delete(
    "/api/conversations/:id",
    { onRequest: requireUser, schema: { tags, summary: "Delete a conversation, its messages and its streams", params: idParams, response: { 204: z.null(), ...standardErrors } } },
    async (request, reply) => {
      await conversations.delete(currentUser(request).id, conversationId(request.params.id));
      return reply.status(204).send(null);
    },
  );
  app.post(
    "/api/conversations/:id/messages",
    {
      onRequest: requireUser,
      schema: {
        tags,
        summary: "Send a message; the reply is generated in the background and streamed at streamUrl",
        params: idParams,
        headers: idempotencyHeaders,
        body: z.strictObject({ content: text().refine((content) => content.trim().length > 0, "The message is empty."), model: text().max(200).optional() }),
        response: { 202: generationAccepted, ...standardErrors },
      },
    },
    async (request, reply) => {
      const accepted = await generations.sendMessage(currentUser(request).id, conversationId(request.params.id), request.body, request.headers["idempotency-key"]);
      return reply.status(202).send(accepted);
    },
  );
  app.post(
    "/api/conversations/:id/regenerate",
    {
      onRequest: requireUser,
      schema: { tags, summary: "Replace the last reply with a new generation", params: idParams, body: z.strictObject({ model: text().max(200).optional() }).nullish(), response: { 202: generationAccepted, ...standardErrors } },
    },
    async (request, reply) => reply.status(202).send(await generations.regenerate(currentUser(request).id, conversationId(request.params.id), { model: request.body?.model })),
  );
}
