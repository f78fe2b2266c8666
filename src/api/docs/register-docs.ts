import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import { jsonSchemaTransform } from "fastify-type-provider-zod";
import type { App } from "../app-type.ts";

/** OpenAPI generated from the routes' zod schemas: JSON at /api/docs/json, the browsable UI at /api/docs. */
export async function registerDocs(app: App): Promise<void> {
  await app.register(swagger, {
    openapi: {
      info: { title: "Sluice API", version: "0.1.0", description: "Durable, resumable LLM chat streaming. The SSE wire contract is in PROTOCOL.md." },
      components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
  });
  await app.register(swaggerUi, { routePrefix: "/api/docs" });
}
