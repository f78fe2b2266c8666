import { z } from "zod";
import type { AccountsService } from "../../chat/accounts-service.ts";
import { SluiceError } from "../../errors/catalog.ts";
import type { App } from "../app-type.ts";
import { currentUser, type RequireUser } from "../auth/authenticate.ts";
import { standardErrors, text, userView } from "../schemas.ts";

const settings = z.object({ defaultModel: z.string().nullable(), systemPrompt: z.string().nullable() });
const settingsPatch = z.strictObject({
  defaultModel: text().max(200).nullable().optional(),
  systemPrompt: text().max(20_000).nullable().optional(),
});

const usage = z.object({ inputTokens: z.number().int(), outputTokens: z.number().int(), messages: z.number().int() }).describe("Tokens in and out over all your replies that recorded usage, and how many replies that is");

export function registerMeRoutes(
  app: App,
  dependencies: {
    accounts: AccountsService;
    requireUser: RequireUser;
    models: readonly string[];
    usageTotals: (userId: string) => Promise<z.infer<typeof usage>>;
  },
): void {
  const { accounts, requireUser, models, usageTotals } = dependencies;
  app.get(
    "/api/me",
    {
      onRequest: requireUser,
      schema: { tags: ["me"], summary: "The signed-in user, their settings, the allowed models and token usage", response: { 200: z.object({ user: userView, settings, models: z.array(z.string()), usage }), ...standardErrors } },
    },
    async (request) => {
      const userId = currentUser(request).id;
      const [profile, totals] = await Promise.all([accounts.profile(userId), usageTotals(userId)]);
      return { ...profile, models: [...models], usage: totals };
    },
  );
  app.patch(
    "/api/me/settings",
    { onRequest: requireUser, schema: { tags: ["me"], summary: "Update the default model and the system prompt", body: settingsPatch, response: { 200: settings, ...standardErrors } } },
    async (request) => {
      const { defaultModel, systemPrompt } = request.body;
      if (defaultModel && !models.includes(defaultModel)) throw new SluiceError("MODEL_NOT_ALLOWED", `Allowed models: ${models.join(", ")}.`);
      return accounts.updateSettings(currentUser(request).id, {
        ...(defaultModel === undefined ? {} : { defaultModel }),
        ...(systemPrompt === undefined ? {} : { systemPrompt }),
      });
    },
  );
}
