import { z } from "zod";
import type { ConversationsService } from "../../chat/conversations-service.ts";
import type { GenerationsService } from "../../chat/generations-service.ts";
import { SluiceError } from "../../errors/catalog.ts";
import type { App } from "../app-type.ts";
import { currentUser, type RequireUser } from "../auth/authenticate.ts";
import type { AnswerStarted } from "../streams/started-stream.ts";
import { conversationDetail, conversationView, generationAccepted, idempotencyHeaders, idParams, isUuid, messageView, pageCursor, standardErrors, text } from "../schemas.ts";

/**
 * Messages per page of GET /api/conversations/{id}: the one place these limits live (README, PROTOCOL.md 13.2).
 * 50 is a screenful or two with room to scroll; 200 bounds one statement's walk.
 */
export const conversationPageSize = { default: 50, max: 200 } as const;
const pageQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(conversationPageSize.max).default(conversationPageSize.default),
  cursor: pageCursor.optional(),
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

/** 202 and its streamUrl, or with `Accept: text/event-stream` the stream itself (PROTOCOL.md 2.4). */
const startedResponses = {
  200: z.string().describe("text/event-stream: an `accepted` event, then the generation's stream from its first event (PROTOCOL.md 2.4)"),
  202: generationAccepted,
  ...standardErrors,
};

export function registerConversationRoutes(
  app: App,
  dependencies: { conversations: ConversationsService; generations: GenerationsService; requireUser: RequireUser; messageChars: number; answerStarted: AnswerStarted },
): void {
  const { conversations, generations, requireUser, answerStarted } = dependencies;
  const conversationId = (id: string): string => {
    if (!isUuid(id)) throw new SluiceError("NOT_FOUND", "No such conversation.");
    return id;
  };
  const messageId = (id: string): string => {
    if (!isUuid(id)) throw new SluiceError("NOT_FOUND", "No such message in this conversation.");
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
    {
      onRequest: requireUser,
      schema: {
        tags,
        summary: "A conversation with a page of its active path",
        description:
          "The conversation is a tree: editing a message or regenerating a reply adds a version beside it, and the active path is the branch being read. " +
          `Messages come newest first in pages of \`limit\` (default ${conversationPageSize.default}, at most ${conversationPageSize.max}), each page in chronological order; ` +
          "`nextCursor` (a keyset cursor: it names the page's oldest message, so pages never skip or repeat) fetches the older page. " +
          "Each message lists its versions in `siblings`. A cursor that is malformed or not of this conversation is 400 VALIDATION_FAILED.",
        params: idParams,
        querystring: pageQuery,
        response: { 200: conversationDetail, ...standardErrors },
      },
    },
    async (request) => conversations.get(currentUser(request).id, conversationId(request.params.id), { limit: request.query.limit, cursor: request.query.cursor }),
  );
  app.post(
    "/api/conversations/:id/branch",
    {
      onRequest: requireUser,
      schema: {
        tags,
        summary: "Read another version: make the branch through a message the active path",
        description:
          "`messageId` is any message of the conversation, usually one of a message's `siblings.ids`. The newest message under it becomes " +
          "the active leaf (what POST /messages appends to and what the model sees next). Answers the conversation as GET does (first page). " +
          "409 GENERATION_IN_PROGRESS while a reply is being generated; 404 NOT_FOUND for a message not in this conversation.",
        params: idParams,
        body: z.strictObject({ messageId: z.string().max(64) }),
        response: { 200: conversationDetail, ...standardErrors },
      },
    },
    async (request) =>
      conversations.chooseBranch(currentUser(request).id, conversationId(request.params.id), messageId(request.body.messageId), { limit: conversationPageSize.default }),
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
        response: startedResponses,
      },
    },
    async (request, reply) => {
      const userId = currentUser(request).id;
      const id = conversationId(request.params.id);
      return answerStarted(request, reply, userId, () => generations.sendMessage(userId, id, request.body, request.headers["idempotency-key"]));
    },
  );
  app.post(
    "/api/conversations/:id/messages/:messageId/edit",
    {
      onRequest: requireUser,
      schema: {
        tags,
        summary: "Edit a message: a new version of it, answered by a new reply; the old version and its replies stay one branch over",
        params: z.object({ id: z.string().max(64), messageId: z.string().max(64) }),
        headers: idempotencyHeaders,
        body: z.strictObject({ content: text().refine((content) => content.trim().length > 0, "The message is empty."), model: text().max(200).optional() }),
        response: startedResponses,
      },
    },
    async (request, reply) => {
      const userId = currentUser(request).id;
      const id = conversationId(request.params.id);
      const edited = messageId(request.params.messageId);
      return answerStarted(request, reply, userId, () => generations.edit(userId, id, edited, request.body, request.headers["idempotency-key"]));
    },
  );
  app.post(
    "/api/conversations/:id/regenerate",
    {
      onRequest: requireUser,
      schema: {
        tags,
        summary: "A new version of a reply (default: the last one on the active path); the old one stays, one branch over",
        params: idParams,
        headers: idempotencyHeaders,
        body: z
          .strictObject({
            model: text().max(200).optional(),
            messageId: z.string().max(64).optional().describe("The reply to regenerate (or a user message to answer again); default: the active path's last"),
          })
          .nullish(),
        response: startedResponses,
      },
    },
    async (request, reply) => {
      const userId = currentUser(request).id;
      const id = conversationId(request.params.id);
      const target = request.body?.messageId;
      const input = { model: request.body?.model, ...(target === undefined ? {} : { messageId: messageId(target) }) };
      return answerStarted(request, reply, userId, () => generations.regenerate(userId, id, input, request.headers["idempotency-key"]));
    },
  );
}
