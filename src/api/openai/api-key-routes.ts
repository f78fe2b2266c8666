import { z } from "zod";
import type { ApiKeysService } from "../../chat/api-keys-service.ts";
import { SluiceError } from "../../errors/catalog.ts";
import type { App } from "../app-type.ts";
import { currentUser, type RequireUser } from "../auth/authenticate.ts";
import { idParams, isUuid, standardErrors, text } from "../schemas.ts";

const apiKeyView = z.object({ id: z.uuid(), name: z.string().nullable(), prefix: z.string(), createdAt: z.string(), lastUsedAt: z.string().nullable() });
const createBody = z.strictObject({ name: text().trim().min(1).max(100).optional() });

/** `/api/me/api-keys`: keys for the OpenAI-compatible `/v1` routes; a session token manages them, a key never does. */
export function registerApiKeyRoutes(app: App, dependencies: { apiKeys: ApiKeysService; requireUser: RequireUser }): void {
  const { apiKeys, requireUser } = dependencies;
  app.post(
    "/api/me/api-keys",
    {
      onRequest: requireUser,
      schema: {
        tags: ["me"],
        summary: "Create an API key for /v1 (OpenAI-compatible); the key is shown only in this answer",
        body: createBody.nullish(),
        response: { 201: apiKeyView.extend({ key: z.string() }), ...standardErrors },
      },
    },
    async (request, reply) => reply.status(201).send(await apiKeys.create(currentUser(request).id, request.body?.name ?? null)),
  );
  app.get(
    "/api/me/api-keys",
    { onRequest: requireUser, schema: { tags: ["me"], summary: "The user's API keys, newest first, without the keys themselves", response: { 200: z.object({ items: z.array(apiKeyView) }), ...standardErrors } } },
    async (request) => ({ items: await apiKeys.list(currentUser(request).id) }),
  );
  app.delete(
    "/api/me/api-keys/:id",
    { onRequest: requireUser, schema: { tags: ["me"], summary: "Revoke an API key at once", params: idParams, response: { 204: z.null(), ...standardErrors } } },
    async (request, reply) => {
      if (!isUuid(request.params.id)) throw new SluiceError("NOT_FOUND", "No such API key.");
      await apiKeys.revoke(currentUser(request).id, request.params.id);
      return reply.status(204).send(null);
    },
  );
}
