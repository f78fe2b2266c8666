import Fastify, { type FastifyInstance } from "fastify";
import { describe, expect, it } from "vitest";
import type { GenerationAccepted, GenerationsService } from "../../chat/generations-service.ts";
import { SluiceError } from "../../errors/catalog.ts";
import type { OpenStreamLeases } from "../../limits/open-stream-leases.ts";
import type { StreamHub } from "../../streaming/index.ts";
import { systemClock } from "../../time/clock.ts";
import { createAnswerStarted, wantsEventStream } from "./started-stream.ts";

const accepted: GenerationAccepted = { assistantMessage: { id: "9d7b5f0e-1c2a-4e8b-9f00-000000000001", status: "streaming" }, taskId: "task_AAAAAAAAAAAAAAAAAAAAAA", streamUrl: "/api/stream/task_AAAAAAAAAAAAAAAAAAAAAA?token=t" };

/**
 * One route that starts a generation through answerStarted, with a hub whose open fails with
 * `openError` (Redis gone between the enqueue and the stream, or the log gone), and a start
 * that fails with `startError` when given.
 */
async function appWithFailingHub(
  openError: SluiceError,
  options: { startError?: SluiceError; leaseRefused?: boolean } = {},
): Promise<{ app: FastifyInstance; leases: { taken: number; released: number }; started: () => number }> {
  const leases = { taken: 0, released: 0 };
  let starts = 0;
  let startCalled!: () => void;
  const startWasCalled = new Promise<void>((resolve) => (startCalled = resolve));
  const hub = { open: () => Promise.reject(openError) } as unknown as StreamHub;
  const openStreamLeases: OpenStreamLeases = {
    // Answers only once the start has begun: an answer that waited for the slot before starting would never come.
    acquire: async () => {
      await startWasCalled;
      if (options.leaseRefused) throw new SluiceError("TOO_MANY_OPEN_STREAMS");
      leases.taken += 1;
      return { renew: () => Promise.resolve(), release: () => Promise.resolve(void (leases.released += 1)) };
    },
  };
  const answerStarted = createAnswerStarted({
    hub,
    generations: { whenStreamMissing: () => Promise.resolve("wait") } as unknown as GenerationsService,
    leases: openStreamLeases,
    leaseRenewMs: 60_000,
    heartbeatMs: 60_000,
    retryMs: 1_000,
    retryJitterMs: 0,
    clock: systemClock,
  });
  const app = Fastify();
  app.setErrorHandler((error: SluiceError, _request, reply) => reply.status(error.status).send({ error: { code: error.code } }));
  app.post("/start", (request, reply) =>
    answerStarted(request, reply, "user-1", () => {
      starts += 1;
      startCalled();
      return options.startError === undefined ? Promise.resolve(accepted) : Promise.reject(options.startError);
    }),
  );
  await app.ready();
  return { app, leases, started: () => starts };
}

describe("answering a request that started a generation", () => {
  it("asks for the stream only when the Accept header names text/event-stream", () => {
    const accepts = (accept?: string): boolean => wantsEventStream({ headers: accept === undefined ? {} : { accept } } as Parameters<typeof wantsEventStream>[0]);
    expect(accepts()).toBe(false);
    expect(accepts("application/json")).toBe(false);
    expect(accepts("*/*")).toBe(false);
    expect(accepts("text/event-stream")).toBe(true);
    expect(accepts("application/json, Text/Event-Stream;q=0.9")).toBe(true);
    expect(accepts("text/event-stream;q=0, application/json")).toBe(false);
    expect(accepts("text/event-stream; charset=utf-8; q=0.0")).toBe(false);
  });

  it("a generation accepted whose stream cannot be opened is answered 202 with its streamUrl, never an error, and its slot is released", async () => {
    const { app, leases, started } = await appWithFailingHub(new SluiceError("SERVICE_UNAVAILABLE"));
    try {
      const answer = await app.inject({ method: "POST", url: "/start", headers: { accept: "text/event-stream" } });
      expect(answer.statusCode).toBe(202);
      expect(answer.json()).toEqual(accepted);
      expect(started()).toBe(1);
      expect(leases).toEqual({ taken: 1, released: 1 });
    } finally {
      await app.close();
    }
  });

  it("a stream that is gone is answered as GET streamUrl answers it (410 for a replay whose log expired), and the slot is released", async () => {
    const { app, leases } = await appWithFailingHub(new SluiceError("STREAM_EXPIRED"));
    try {
      const answer = await app.inject({ method: "POST", url: "/start", headers: { accept: "text/event-stream" } });
      expect(answer.statusCode).toBe(410);
      expect(answer.json<{ error: { code: string } }>().error.code).toBe("STREAM_EXPIRED");
      expect(leases).toEqual({ taken: 1, released: 1 });
    } finally {
      await app.close();
    }
  });

  it("a refused start (a bad body, an unknown conversation, a limit) releases the slot it took", async () => {
    const { app, leases, started } = await appWithFailingHub(new SluiceError("SERVICE_UNAVAILABLE"), { startError: new SluiceError("NOT_FOUND") });
    try {
      const answer = await app.inject({ method: "POST", url: "/start", headers: { accept: "text/event-stream" } });
      expect(answer.statusCode).toBe(404);
      expect(started()).toBe(1);
      expect(leases).toEqual({ taken: 1, released: 1 });
    } finally {
      await app.close();
    }
  });

  it("the slot and the start go side by side; with no slot free the generation still starts and the answer is its 202", async () => {
    const { app, leases, started } = await appWithFailingHub(new SluiceError("SERVICE_UNAVAILABLE"), { leaseRefused: true });
    try {
      const answer = await app.inject({ method: "POST", url: "/start", headers: { accept: "text/event-stream" } });
      expect(answer.statusCode).toBe(202);
      expect(answer.json()).toEqual(accepted);
      expect(started()).toBe(1);
      expect(leases).toEqual({ taken: 0, released: 0 });
    } finally {
      await app.close();
    }
  });
});
