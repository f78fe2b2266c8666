import { SpanKind } from "@opentelemetry/api";
import Fastify, { type FastifyBaseLogger, type RouteOptions } from "fastify";
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from "fastify-type-provider-zod";
import type { Logger } from "pino";
import type { Config } from "../config/config.ts";
import type { App } from "./app-type.ts";
import { answerClientError } from "./errors/answer-client-error.ts";
import { answerFrameworkError, registerErrorHandling } from "./errors/error-handler.ts";
import { registerHealthRoutes, type ReadinessProbe } from "./health/health-routes.ts";
import { registerSecurityHeaders } from "./web/register-security-headers.ts";
import { withSpan } from "../tracing/with-span.ts";
import { createRequestLogController } from "./log-requests.ts";

export interface AppDependencies {
  readonly logger: Logger;
  readonly readinessProbes: readonly ReadinessProbe[];
  /** Feature routes, registered after the shared plumbing (chat, streams, UI). */
  readonly features?: ReadonlyArray<(app: App) => void | Promise<void>>;
}

/**
 * Builds the Fastify app without listening, so tests can use `app.inject()` or
 * port 0 and only the entry point calls `listen` (fastify testing guide).
 */
export async function buildApp(config: Config, dependencies: AppDependencies): Promise<App> {
  // pino's Logger satisfies Fastify's logger interface; naming the narrower type keeps App's type simple.
  const fastifyLogger: FastifyBaseLogger = dependencies.logger;
  const app = Fastify({
    loggerInstance: fastifyLogger,
    // One line per request instead of two (log-requests.ts).
    logController: createRequestLogController(),
    bodyLimit: config.limits.bodyBytes,
    // Slowloris: a client that trickles headers or a body is cut off. Node checks the
    // timeout every connectionsCheckingInterval (30 s by default), so check at a quarter
    // of it: a trickling socket is closed within 1.25 × LIMIT_REQUEST_TIMEOUT_MS.
    connectionTimeout: 0,
    requestTimeout: config.limits.requestTimeoutMs,
    http: { connectionsCheckingInterval: Math.min(30_000, Math.max(250, Math.floor(config.limits.requestTimeoutMs / 4))) },
    keepAliveTimeout: 72_000,
    // Deep or poisoned JSON never reaches a handler.
    onProtoPoisoning: "error",
    onConstructorPoisoning: "error",
    // TRUST_PROXY (hop count or proxy addresses, never blanket true): request.ip is then the
    // address the trusted proxy saw, so per-IP limits apply per client behind nginx.
    trustProxy: trustedProxies(config.http.trustProxy),
    // While closing, registerErrorHandling answers 503 SERVICE_UNAVAILABLE in the error shape
    // (Fastify's own 503 body is not).
    return503OnClosing: false,
    forceCloseConnections: false,
    // What Fastify and Node answer by themselves (bad %-encoding, over-long path parameter,
    // unparsable HTTP, 408, 431) gets the one error shape with a catalog code too.
    frameworkErrors: answerFrameworkError,
    clientErrorHandler: answerClientError,
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  registerErrorHandling(app, { drainUnreadBodyMs: config.limits.requestTimeoutMs });
  registerSecurityHeaders(app);
  // Only with tracing on, so the off path has no wrapper at all (docs/operations.md "Tracing").
  if (config.tracing.tracesEndpoint !== undefined) app.addHook("onRoute", traceRoute);
  registerHealthRoutes(app, dependencies.readinessProbes, 2_000);
  for (const feature of dependencies.features ?? []) await feature(app);
  await app.ready();
  return app;
}

/** A hop count trusts the nearest `hops` addresses (proxy-addr's rule; Fastify's types take it only as a function). */
function trustedProxies(setting: Config["http"]["trustProxy"]): boolean | string[] | ((address: string, hop: number) => boolean) {
  if (typeof setting === "number") return (_address, hop) => hop < setting;
  return setting === false ? false : [...setting];
}

/**
 * Runs an /api route's handler inside a server span named by route, never by
 * URL (`POST /api/conversations/:id/messages`), so the enqueue below it joins
 * the request's trace. Hooks such as onRequest auth run before the span.
 */
function traceRoute(route: RouteOptions): void {
  if (!route.url.startsWith("/api/")) return;
  const name = `${[route.method].flat().join(",")} ${route.url}`;
  const handler = route.handler;
  route.handler = function tracedHandler(request, reply) {
    return withSpan(name, { kind: SpanKind.SERVER, attributes: { "http.request.method": request.method, "http.route": route.url } }, async (span) => {
      const result: unknown = await handler.call(this, request, reply);
      span.setAttribute("http.response.status_code", reply.statusCode);
      return result;
    });
  };
}
