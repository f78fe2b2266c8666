import { existsSync } from "node:fs";
import { join } from "node:path";
import fastifyStatic from "@fastify/static";
import type { App } from "../app-type.ts";

/**
 * Serves the built chat UI (web/dist) at `/`. Client-side routes such as
 * `/c/<id>` fall back to index.html; `/api` stays the API's (its 404s keep the
 * JSON error shape). Without a build, nothing is registered and `/` is a 404.
 */
export async function registerWebUi(app: App, distDirectory: string): Promise<boolean> {
  if (!existsSync(join(distDirectory, "index.html"))) return false;
  await app.register(fastifyStatic, { root: distDirectory, prefix: "/", wildcard: false, index: "index.html", cacheControl: false });
  app.get("/*", { schema: { hide: true } }, (request, reply) => {
    const path = request.url.split("?")[0] ?? "/";
    if (path.startsWith("/api/") || /\.[a-z0-9]+$/i.test(path)) {
      return reply.callNotFound();
    }
    return reply.header("cache-control", "no-cache").sendFile("index.html");
  });
  return true;
}
