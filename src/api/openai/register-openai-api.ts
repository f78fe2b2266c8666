import { z } from "zod";
import type { ApiKeysService } from "../../chat/api-keys-service.ts";
import { SluiceError } from "../../errors/catalog.ts";
import type { App } from "../app-type.ts";
import { bearerToken } from "../auth/authenticate.ts";
import { text } from "../schemas.ts";
import { registerChatCompletionRoutes, type ChatCompletionRouteDependencies } from "./chat-completion-routes.ts";
import { registerOpenAiErrorHandling } from "./openai-errors.ts";
import { registerResponseRoutes } from "./response-routes.ts";

export interface OpenAiApiDependencies extends ChatCompletionRouteDependencies {
  apiKeys: ApiKeysService;
  models: readonly string[];
}

/**
 * The OpenAI-compatible API under `/v1` (README "Use Sluice from the OpenAI SDK"), an
 * encapsulated plugin: its own error shape (openai-errors.ts) and its own credentials, an API
 * key from `/api/me/api-keys`; a session token is refused here, and a key is refused on `/api`.
 */
export async function registerOpenAiApi(app: App, dependencies: OpenAiApiDependencies): Promise<void> {
  await app.register(
    (v1: App) => {
      registerOpenAiErrorHandling(v1);
      v1.decorateRequest("apiKeyUser", null);
      v1.addHook("onRequest", async (request) => {
        const token = bearerToken(request);
        const user = token === undefined ? undefined : await dependencies.apiKeys.authenticate(token);
        if (!user) throw new SluiceError("UNAUTHENTICATED", token === undefined ? "Send an API key as Authorization: Bearer <key> (create one with POST /api/me/api-keys)." : "Incorrect API key provided.");
        request.apiKeyUser = { id: user.id, apiKeyId: user.apiKeyId };
      });
      const model = (id: string) => ({ id, object: "model" as const, created: 0, owned_by: "sluice" });
      const modelView = z.object({ id: z.string(), object: z.literal("model"), created: z.number(), owned_by: z.string() });
      v1.get(
        "/models",
        { schema: { tags: ["openai"], summary: "The allowed models, as OpenAI's model list", response: { 200: z.object({ object: z.literal("list"), data: z.array(modelView) }) } } },
        () => Promise.resolve({ object: "list" as const, data: dependencies.models.map(model) }),
      );
      v1.get(
        "/models/:model",
        { schema: { tags: ["openai"], summary: "One allowed model", params: z.object({ model: text().max(200) }), response: { 200: modelView } } },
        (request) => {
          if (!dependencies.models.includes(request.params.model)) throw new SluiceError("NOT_FOUND", `The model "${request.params.model}" does not exist.`);
          return Promise.resolve(model(request.params.model));
        },
      );
      registerChatCompletionRoutes(v1, dependencies);
      registerResponseRoutes(v1, dependencies);
      return Promise.resolve();
    },
    { prefix: "/v1" },
  );
}
