import helmet from "helmet";
import type { App } from "../app-type.ts";

/**
 * The Content-Security-Policy of every response: the chat UI loads only its own
 * bundle (Vite emits no inline script or style), talks only to its own origin,
 * and shows images only from its own origin or `data:`, so model output cannot
 * make a browser fetch an attacker's URL (web/src/chat/render-markdown.ts also
 * renders such images as links). No one may frame it.
 */
export const contentSecurityPolicy = {
  "default-src": ["'self'"],
  "script-src": ["'self'"],
  "script-src-attr": ["'none'"],
  "style-src": ["'self'"],
  "img-src": ["'self'", "data:"],
  "font-src": ["'self'"],
  "connect-src": ["'self'"],
  "object-src": ["'none'"],
  "base-uri": ["'self'"],
  "form-action": ["'self'"],
  "frame-ancestors": ["'none'"],
} as const;

/**
 * Security headers on every response (helmet): the CSP above, `X-Content-Type-Options: nosniff`,
 * `Referrer-Policy: no-referrer` (a stream URL's read token never leaves in a Referer),
 * `X-Frame-Options: DENY` for browsers without `frame-ancestors`. HSTS is left to the
 * TLS-terminating proxy: Sluice itself speaks plain HTTP and cannot know the public scheme.
 */
export function registerSecurityHeaders(app: App): void {
  // Built once: @fastify/helmet builds helmet's middleware (and parses the CSP) on every request,
  // about 2 % of the API's CPU in a burst of starts (BENCHMARKS.md, eleventh session).
  const setHeaders = helmet({
    contentSecurityPolicy: { useDefaults: false, directives: Object.fromEntries(Object.entries(contentSecurityPolicy).map(([name, values]) => [name, [...values]])) },
    referrerPolicy: { policy: "no-referrer" },
    xFrameOptions: { action: "deny" },
    strictTransportSecurity: false,
  });
  // On the raw response, so a hijacked one (an SSE stream) has them too.
  app.addHook("onRequest", (request, reply, done) => {
    setHeaders(request.raw, reply.raw, (error?: unknown) => done(error instanceof Error ? error : undefined));
  });
  // Swagger UI (/api/docs) applies inline styles; it shows only Sluice's own OpenAPI document,
  // never user or model text, so its pages alone may. Scripts stay 'self' there too.
  app.addHook("onSend", async (request, reply, payload) => {
    if (request.url === docsPrefix || request.url.startsWith(`${docsPrefix}/`)) void reply.header("content-security-policy", docsPolicy);
    return payload;
  });
}

const docsPrefix = "/api/docs";
const docsPolicy = Object.entries({ ...contentSecurityPolicy, "style-src": ["'self'", "'unsafe-inline'"] })
  .map(([name, values]) => `${name} ${values.join(" ")}`)
  .join(";");
