import type { FastifyRequest } from "fastify";
import { SluiceError } from "../../errors/catalog.ts";

declare module "fastify" {
  interface FastifyRequest {
    /** Set by the `/v1` onRequest hook (register-openai-api.ts): the API key's owner. */
    apiKeyUser: { id: string; apiKeyId: string } | null;
  }
}

/** The key's owner for this `/v1` request. */
export function apiKeyUser(request: FastifyRequest): { id: string; apiKeyId: string } {
  if (!request.apiKeyUser) throw new SluiceError("UNAUTHENTICATED");
  return request.apiKeyUser;
}
