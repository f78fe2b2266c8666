import type { FastifyRequest } from "fastify";
import { SluiceError } from "../../errors/catalog.ts";
import type { AuthenticatedUser } from "../../storage/sessions-repository.ts";

declare module "fastify" {
  interface FastifyRequest {
    /** Set by the `requireUser` onRequest hook of protected routes. */
    sluiceUser: AuthenticatedUser | null;
  }
}

/** Reads `Authorization: Bearer <token>`; anything else is treated as no token. */
export function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (typeof header !== "string") return undefined;
  const match = /^Bearer ([A-Za-z0-9_.~+/=-]{1,512})$/.exec(header.trim());
  return match?.[1];
}

/**
 * An onRequest hook: runs before the body is read or validated, so a request
 * without a valid token gets 401 whatever its body, and its body is never parsed.
 */
export type RequireUser = (request: FastifyRequest) => Promise<void>;

export function createRequireUser(authenticate: (token: string) => Promise<AuthenticatedUser | undefined>): RequireUser {
  return async (request) => {
    const token = bearerToken(request);
    const user = token === undefined ? undefined : await authenticate(token);
    if (!user) throw new SluiceError("UNAUTHENTICATED");
    request.sluiceUser = user;
  };
}

/** The user that `requireUser` resolved for this request. */
export function currentUser(request: FastifyRequest): AuthenticatedUser {
  if (!request.sluiceUser) throw new SluiceError("UNAUTHENTICATED");
  return request.sluiceUser;
}
