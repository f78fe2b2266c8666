import type { IncomingMessage, ServerResponse } from "node:http";
import { serveBenchProcess } from "../lib/serve-bench-process.ts";
import { createSimulatedProvider } from "../../src/llm/simulated-provider.ts";

/**
 * What every baseline shares, so that only the transport differs: the same
 * stamped simulated provider as Sluice's worker, the same two routes, the same
 * SSE shape (`text-delta` events with `{"delta"}` JSON, one `end`).
 *
 *   POST /start?rate=<tokens/s>&count=<tokens>  -> {"id","streamUrl"}
 *   GET  /stream/<id>   (Last-Event-ID or ?skip=<characters> to resume)
 */
export interface Baseline {
  /** Called by POST /start; a baseline with a worker starts generating here. */
  start(id: string, plan: GenerationPlan): void | Promise<void>;
  /** Serves one SSE client until the stream ends or the client leaves. */
  serve(id: string, resume: ResumePoint, request: IncomingMessage, response: ServerResponse): Promise<void>;
  close?(): void | Promise<void>;
}

export interface GenerationPlan {
  tokensPerSecond: number;
  tokenCount: number;
}

export interface ResumePoint {
  lastEventId: string | undefined;
  skipCharacters: number;
}

export const sseHeaders = { "Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache", Connection: "keep-alive" } as const;

export const textFrame = (delta: string, id?: number): string =>
  `${id === undefined ? "" : `id: ${id}\n`}event: text-delta\ndata: ${JSON.stringify({ type: "text-delta", delta })}\n\n`;
export const endFrame = (id?: number): string => `${id === undefined ? "" : `id: ${id}\n`}event: end\ndata: {"type":"end","status":"completed"}\n\n`;

/** Runs the simulated provider and hands each delta (one token at these rates) to `onDelta`. */
export async function generate(plan: GenerationPlan, onDelta: (delta: string) => void | Promise<void>, signal = new AbortController().signal): Promise<void> {
  const provider = createSimulatedProvider({ tokensPerSecond: plan.tokensPerSecond, tokenCount: plan.tokenCount, stampTokens: true });
  for await (const event of provider.stream({ model: "bench", messages: [{ role: "user", content: "bench" }] }, signal)) {
    if (event.type === "text-delta") await onDelta(event.delta);
  }
}

let nextId = 0;

/** Starts the HTTP server on BENCH_PORT (0 = any) and prints `{"listening":port}` for bench/run.ts. */
export async function runBaseline(baseline: Baseline): Promise<void> {
  await serveBenchProcess({ handle: (request, response) => route(baseline, request, response), onStop: () => baseline.close?.() });
}

async function route(baseline: Baseline, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const url = new URL(request.url ?? "/", "http://localhost");
  if (request.method === "POST" && url.pathname === "/start") {
    request.resume();
    const id = `${process.pid}-${(nextId += 1)}`;
    const plan = { tokensPerSecond: Number(url.searchParams.get("rate") ?? 20), tokenCount: Number(url.searchParams.get("count") ?? 100) };
    await baseline.start(id, plan);
    response.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify({ id, streamUrl: `/stream/${id}` }));
    return;
  }
  const match = /^\/stream\/([\w-]+)$/.exec(url.pathname);
  if (request.method === "GET" && match?.[1]) {
    const header = request.headers["last-event-id"];
    await baseline.serve(
      match[1],
      { lastEventId: typeof header === "string" && header !== "" ? header : undefined, skipCharacters: Number(url.searchParams.get("skip") ?? 0) },
      request,
      response,
    );
    return;
  }
  response.writeHead(404).end();
}

/** Resolves when the client has gone away. */
export const closed = (response: ServerResponse): Promise<void> => new Promise((resolve) => response.once("close", () => resolve()));
