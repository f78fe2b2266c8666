import { z } from "zod";
import type { AccountsService } from "../../chat/accounts-service.ts";
import type { FixedWindowLimiter } from "../../limits/fixed-window-limiter.ts";
import { callRedis } from "../../errors/dependency-failure.ts";
import type { App } from "../app-type.ts";
import { emailAddress, standardErrors, text, userView } from "../schemas.ts";
import { bearerToken, currentUser, type RequireUser } from "./authenticate.ts";

const credentials = z.strictObject({
  email: emailAddress,
  password: text().min(8, "Use at least 8 characters.").max(256),
});
const session = z.object({ user: userView, token: z.string() });

export function registerAuthRoutes(app: App, dependencies: { accounts: AccountsService; authLimiter: FixedWindowLimiter; requireUser: RequireUser }): void {
  const { accounts, authLimiter, requireUser } = dependencies;
  app.post(
    "/api/auth/register",
    { schema: { tags: ["auth"], summary: "Create an account and a session", body: credentials, response: { 201: session, ...standardErrors } } },
    async (request, reply) => {
      await callRedis(() => authLimiter.hit(request.ip));
      const { user, token } = await accounts.register(request.body.email, request.body.password);
      return reply.status(201).send({ user, token });
    },
  );
  app.post(
    "/api/auth/login",
    { schema: { tags: ["auth"], summary: "Start a session", body: credentials.extend({ password: text().min(1).max(256) }), response: { 200: session, ...standardErrors } } },
    async (request) => {
      await callRedis(() => authLimiter.hit(request.ip));
      const { user, token } = await accounts.login(request.body.email, request.body.password);
      return { user, token };
    },
  );
  app.post(
    "/api/auth/logout",
    { schema: { tags: ["auth"], summary: "End the current session", response: { 204: z.null(), ...standardErrors } } },
    async (request, reply) => {
      const token = bearerToken(request);
      if (token !== undefined) await accounts.logout(token);
      return reply.status(204).send(null);
    },
  );
  app.post(
    "/api/auth/logout-all",
    { onRequest: requireUser, schema: { tags: ["auth"], summary: "Sign out everywhere: end every session of the signed-in user", response: { 204: z.null(), ...standardErrors } } },
    async (request, reply) => {
      await accounts.logoutEverywhere(currentUser(request).id);
      return reply.status(204).send(null);
    },
  );
}
