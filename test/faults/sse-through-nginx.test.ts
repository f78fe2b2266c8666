/**
 * Fault 11 (issue #7): SSE through a real nginx left at its defaults for
 * proxying (proxy_buffering on, proxy_read_timeout 60 s) with gzip on for
 * text/event-stream. Nothing in the nginx config helps Sluice; only the
 * response headers of PROTOCOL.md 2.2 do.
 *
 * The measurement is the client's "deliveries": each body chunk the client
 * receives (one `data` event of node:http, before gunzip). A proxy that
 * buffers hands the whole stream over in one delivery at the end; a live
 * stream arrives in many. Controls show the measurement can tell them apart:
 * a tiny server writing one event every 100 ms is streamed when read directly
 * and when it sends Sluice's headers, and arrives in one burst through the
 * same nginx with only `Content-Type: text/event-stream`.
 *
 * What nginx does (1.22, found by these tests): `X-Accel-Buffering: no` makes
 * it proxy the response unbuffered, and every unbuffered upstream read is
 * passed on with a flush, which the gzip filter honours with a sync flush.
 * So the response IS gzip-encoded (nginx's gzip ignores
 * `Cache-Control: no-transform`), yet each event still leaves at once;
 * clients decompress incrementally. Without the header, proxy buffering and
 * gzip both hold the body until the upstream ends.
 *
 * Heartbeats: a stream silent for 92 s, past nginx's 60 s read timeout, stays
 * open with the shipped HEARTBEAT_INTERVAL_MS (15 s) and ends once; the same
 * stream with heartbeats every 120 s is cut by nginx while a direct reader
 * still gets its `end`.
 */
import { existsSync } from "node:fs";
import { createServer, get, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { StringDecoder } from "node:string_decoder";
import { constants as zlibConstants, gunzipSync } from "node:zlib";
import { createParser } from "eventsource-parser";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sseHeaders } from "../../src/streaming/serve-sse.ts";
import type { SseEvent } from "../support/client/read-sse.ts";
import { textOf } from "../support/client/read-sse.ts";
import { nginxExecutable, startNginx, type NginxProcess } from "../support/servers/nginx.ts";
import { registerUser, waitForFinalReply, type ChatUser } from "../support/client/chat-api.ts";
import { clusterStartTimeoutMs } from "../support/sluice/environment.ts";
import { startSluice, type ProcessSluice } from "../support/sluice/start-sluice.ts";

/** nginx's default proxy_read_timeout. */
const nginxReadTimeoutMs = 60_000;
/** The silence in the heartbeat tests: the simulated model's second word comes this long after the first. */
const silenceMs = 92_000;
const silentTestTimeoutMs = silenceMs + 90_000;

/**
 * The shipped job timings, not `recovery: "fast"`'s: a 92 s generation must not be
 * taken over because a loaded machine delayed a 1 s lock renewal.
 */
const productionTimings: Record<string, string> = {
  JOB_LOCK_DURATION_MS: "30000",
  JOB_STALLED_INTERVAL_MS: "15000",
  ORPHAN_SWEEP_INTERVAL_MS: "15000",
  ORPHAN_TIMEOUT_MS: "120000",
  STREAM_STALL_TIMEOUT_MS: "3000",
  SSE_RETRY_MS: "2000",
  HEARTBEAT_INTERVAL_MS: "15000",
};

const liveTokenCount = 30;
const controlEventCount = 20;

interface Delivery {
  /** Milliseconds since the request was sent. */
  atMs: number;
  events: SseEvent[];
  /** SSE comment lines (heartbeats) in this delivery. */
  comments: number;
}

interface DeliveredStream {
  status: number;
  headers: IncomingHttpHeaders;
  deliveries: Delivery[];
  events: SseEvent[];
  /** The body ended properly (false: the connection was cut mid-body). */
  complete: boolean;
}

/**
 * GETs an SSE URL asking for gzip, and records which events came in which
 * delivery. A gzip body is decoded from everything received so far with a
 * sync-flush finish, so each delivery yields exactly the text it made decodable.
 */
function readDeliveries(url: string, headers: Record<string, string> = {}): Promise<DeliveredStream> {
  return new Promise((resolve, reject) => {
    const startedAt = Date.now();
    const request = get(url, { headers: { accept: "text/event-stream", "accept-encoding": "gzip", ...headers } }, (response) => {
      const gzipped = response.headers["content-encoding"] === "gzip";
      const result: DeliveredStream = { status: response.statusCode ?? 0, headers: response.headers, deliveries: [], events: [], complete: false };
      const received: Buffer[] = [];
      let decodedBytes = 0;
      const decoder = new StringDecoder("utf8");
      const parser = createSseParser();
      response.on("data", (chunk: Buffer) => {
        let bytes = chunk;
        if (gzipped) {
          received.push(chunk);
          const decoded = gunzipSync(Buffer.concat(received), { finishFlush: zlibConstants.Z_SYNC_FLUSH });
          bytes = decoded.subarray(decodedBytes);
          decodedBytes = decoded.length;
        }
        const { events, comments } = parser.push(decoder.write(bytes));
        result.events.push(...events);
        result.deliveries.push({ atMs: Date.now() - startedAt, events, comments });
      });
      response.once("end", () => (result.complete = true));
      // A cut body emits `aborted`/`error`; `close` comes either way.
      response.on("error", () => undefined);
      response.once("close", () => resolve(result));
    });
    request.once("error", reject);
  });
}

/** Incremental: each push returns the events and heartbeat comments completed by that piece of text. */
function createSseParser(): { push(text: string): { events: SseEvent[]; comments: number } } {
  let events: SseEvent[] = [];
  let comments = 0;
  const parser = createParser({
    onEvent: (message) => events.push({ id: message.id, event: message.event ?? "message", data: message.data, json: JSON.parse(message.data) as SseEvent["json"] }),
    onComment: () => (comments += 1),
  });
  return {
    push(text) {
      events = [];
      comments = 0;
      parser.feed(text);
      return { events, comments };
    },
  };
}

/** Index of the delivery holding the first event that matches. */
function deliveryOf(stream: DeliveredStream, matches: (event: SseEvent) => boolean): number {
  return stream.deliveries.findIndex((delivery) => delivery.events.some(matches));
}

/** Per delivery: when, heartbeats, and the events (their data unless a text-delta), for failure messages. */
function describeDeliveries(stream: DeliveredStream): string {
  return JSON.stringify(stream.deliveries.map((delivery) => [delivery.atMs, delivery.comments, delivery.events.map((event) => (event.event === "text-delta" ? event.event : event.data))]));
}

function deliveriesWith(stream: DeliveredStream, type: string): number {
  return stream.deliveries.filter((delivery) => delivery.events.some((event) => event.event === type)).length;
}

/** The control server's header sets, by path: they differ in headers alone. */
const controlHeaders: Record<string, Record<string, string>> = {
  "/plain": { "Content-Type": "text/event-stream" },
  "/sluice-headers": { ...sseHeaders },
  // Pins which of Sluice's headers nginx obeys: no-transform and no-cache do not stop it.
  "/sluice-headers-but-x-accel": Object.fromEntries(Object.entries(sseHeaders).filter(([name]) => name !== "X-Accel-Buffering")),
};

/** The negative control's upstream: one small event every 100 ms, then the end. */
async function startControlServer(): Promise<{ server: Server; port: number }> {
  const server = createServer((request, response) => {
    response.writeHead(200, controlHeaders[request.url ?? ""] ?? {});
    let sent = 0;
    const timer = setInterval(() => {
      response.write(`event: tick\ndata: {"type":"tick","n":${sent}}\n\n`);
      sent += 1;
      if (sent === controlEventCount) {
        clearInterval(timer);
        response.end();
      }
    }, 100);
    response.once("close", () => clearInterval(timer));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

function portOf(cluster: ProcessSluice): number {
  return Number(new URL(cluster.url).port);
}

describe.skipIf(!existsSync(nginxExecutable))("SSE through a default nginx with gzip (issue #7)", () => {
  let live: ProcessSluice;
  let silent: ProcessSluice;
  let silentWithoutHeartbeats: ProcessSluice;
  const clusters: ProcessSluice[] = [];
  let control: { server: Server; port: number };
  const proxies: NginxProcess[] = [];
  let liveProxy: NginxProcess;
  let silentProxy: NginxProcess;
  let silentWithoutHeartbeatsProxy: NginxProcess;
  let controlProxy: NginxProcess;

  beforeAll(async () => {
    control = await startControlServer();
    // allSettled: a cluster that did start is still stopped in afterAll when another one failed.
    const started = await Promise.allSettled([
      startSluice({ mode: "processes", label: "nginxlive", env: { ...productionTimings, SIMULATED_TOKENS_PER_SECOND: "10", SIMULATED_TOKEN_COUNT: String(liveTokenCount) } }),
      // Two words: the first at once, the second `silenceMs` later.
      startSluice({ mode: "processes", label: "nginxsilent", env: { ...productionTimings, SIMULATED_TOKENS_PER_SECOND: String(1000 / silenceMs), SIMULATED_TOKEN_COUNT: "2" } }),
      startSluice({
        mode: "processes",
        label: "nginxnobeat",
        env: { ...productionTimings, SIMULATED_TOKENS_PER_SECOND: String(1000 / silenceMs), SIMULATED_TOKEN_COUNT: "2", HEARTBEAT_INTERVAL_MS: "120000" },
      }),
    ]);
    clusters.push(...started.flatMap((result) => (result.status === "fulfilled" ? [result.value] : [])));
    for (const result of started) if (result.status === "rejected") throw result.reason;
    [live, silent, silentWithoutHeartbeats] = clusters as [ProcessSluice, ProcessSluice, ProcessSluice];
    for (const upstreamPort of [portOf(live), portOf(silent), portOf(silentWithoutHeartbeats), control.port]) proxies.push(await startNginx({ upstreamPort }));
    [liveProxy, silentProxy, silentWithoutHeartbeatsProxy, controlProxy] = proxies as [NginxProcess, NginxProcess, NginxProcess, NginxProcess];
  }, clusterStartTimeoutMs);

  afterAll(async () => {
    await Promise.all(proxies.map((proxy) => proxy.stop()));
    await Promise.all(clusters.map((cluster) => cluster.stop()));
    control?.server.closeAllConnections();
    await new Promise((resolve) => control?.server.close(resolve) ?? resolve(undefined));
  });

  async function startGeneration(cluster: ProcessSluice, label: string): Promise<{ session: ChatUser; conversationId: string; taskId: string }> {
    const session = await registerUser(cluster.url, label);
    const conversationId = (await session.createConversation()).id;
    const { taskId } = await session.send(conversationId, "Tell me about rivers.");
    return { session, conversationId, taskId };
  }

  function streamPath(taskId: string): string {
    return `/api/stream/${taskId}`;
  }

  describe.concurrent("one Sluice per case, behind its own nginx", () => {
    it("delivers text-deltas live through nginx, gzip-encoded but flushed per event, with exactly one end", async () => {
      const { session, conversationId, taskId } = await startGeneration(live, "nginxlive");
      const stream = await readDeliveries(`${liveProxy.url}${streamPath(taskId)}`, { authorization: `Bearer ${session.token}` });
      const summary = describeDeliveries(stream);

      expect(stream.status).toBe(200);
      expect(stream.complete).toBe(true);
      // nginx's gzip filter applies to text/event-stream here (see the header comment);
      // what must hold either way is that the events were not held back.
      expect([undefined, "gzip"]).toContain(stream.headers["content-encoding"]);
      expect(stream.events.filter((event) => event.event === "end")).toHaveLength(1);
      // ~30 words at 10 per second: a buffering proxy gives one delivery; live gives about 30.
      expect(deliveriesWith(stream, "text-delta"), summary).toBeGreaterThanOrEqual(5);
      const firstText = deliveryOf(stream, (event) => event.event === "text-delta");
      const end = deliveryOf(stream, (event) => event.event === "end");
      expect(end - firstText, summary).toBeGreaterThanOrEqual(5);

      const saved = await waitForFinalReply(session, conversationId, taskId);
      expect(saved.status).toBe("completed");
      expect(textOf(stream.events)).toBe(saved.content);
    }, 60_000);

    it("negative control: the same measurement sees nginx hold back a stream sent without Sluice's headers", async () => {
      const [direct, plainThroughNginx, sluiceHeadersThroughNginx, withoutXAccelThroughNginx] = await Promise.all([
        readDeliveries(`http://127.0.0.1:${control.port}/plain`),
        readDeliveries(`${controlProxy.url}/plain`),
        readDeliveries(`${controlProxy.url}/sluice-headers`),
        readDeliveries(`${controlProxy.url}/sluice-headers-but-x-accel`),
      ]);
      const summary = (stream: DeliveredStream): string => JSON.stringify(stream.deliveries.map((delivery) => [delivery.atMs, delivery.events.length]));
      for (const stream of [direct, plainThroughNginx, sluiceHeadersThroughNginx, withoutXAccelThroughNginx]) {
        expect(stream.complete).toBe(true);
        expect(stream.events).toHaveLength(controlEventCount);
      }
      // The server itself streams: read directly, its events are spread out.
      expect(deliveriesWith(direct, "tick"), summary(direct)).toBeGreaterThanOrEqual(5);
      // gzip is live in this nginx config for event streams, and the client asked for it.
      expect(plainThroughNginx.headers["content-encoding"]).toBe("gzip");
      // Through nginx without the headers: nothing before the end, all in one burst.
      for (const stream of [plainThroughNginx, withoutXAccelThroughNginx]) {
        const first = deliveryOf(stream, (event) => event.event === "tick");
        const last = deliveryOf(stream, (event) => event.json.n === controlEventCount - 1);
        expect(first, summary(stream)).toBe(last);
      }
      // The same server with Sluice's header block streams through the same nginx.
      expect(deliveriesWith(sluiceHeadersThroughNginx, "tick"), summary(sluiceHeadersThroughNginx)).toBeGreaterThanOrEqual(5);
    });

    it(
      "keeps a stream silent for 92 s open past nginx's 60 s read timeout with the default 15 s heartbeats, then ends it once",
      async () => {
        const { session, conversationId, taskId } = await startGeneration(silent, "nginxsilent");
        const stream = await readDeliveries(`${silentProxy.url}${streamPath(taskId)}`, { authorization: `Bearer ${session.token}` });
        const summary = describeDeliveries(stream);

        expect(stream.status).toBe(200);
        expect(stream.complete, summary).toBe(true);
        expect(stream.events.filter((event) => event.event === "end"), summary).toHaveLength(1);
        const texts = stream.deliveries.filter((delivery) => delivery.events.some((event) => event.event === "text-delta"));
        expect(texts, summary).toHaveLength(2);
        const [firstWord, secondWord] = texts as [Delivery, Delivery];
        // The silence really crossed nginx's read timeout (load only lengthens it)...
        expect(secondWord.atMs - firstWord.atMs, summary).toBeGreaterThan(nginxReadTimeoutMs);
        // ...and was bridged by heartbeats: about six at 15 s over 92 s.
        const between = stream.deliveries.slice(stream.deliveries.indexOf(firstWord) + 1, stream.deliveries.indexOf(secondWord));
        expect(between.reduce((total, delivery) => total + delivery.comments, 0), summary).toBeGreaterThanOrEqual(4);
        expect(await silentProxy.errorLog()).not.toMatch(/upstream timed out/);

        const saved = await waitForFinalReply(session, conversationId, taskId);
        expect(saved.status).toBe("completed");
        expect(textOf(stream.events)).toBe(saved.content);
      },
      silentTestTimeoutMs,
    );

    it(
      "negative control: without a heartbeat inside 60 s nginx cuts the same silent stream, which a direct reader sees end",
      async () => {
        const { session, taskId } = await startGeneration(silentWithoutHeartbeats, "nginxnobeat");
        const authorization = { authorization: `Bearer ${session.token}` };
        const [throughNginx, direct] = await Promise.all([
          readDeliveries(`${silentWithoutHeartbeatsProxy.url}${streamPath(taskId)}`, authorization),
          readDeliveries(`${silentWithoutHeartbeats.url}${streamPath(taskId)}`, authorization),
        ]);
        const summary = describeDeliveries(throughNginx);

        expect(throughNginx.status).toBe(200);
        expect(throughNginx.events.filter((event) => event.event === "text-delta"), summary).toHaveLength(1);
        expect(throughNginx.events.some((event) => event.event === "end"), summary).toBe(false);
        expect(await silentWithoutHeartbeatsProxy.errorLog()).toMatch(/upstream timed out/);

        expect(direct.complete).toBe(true);
        expect(direct.events.filter((event) => event.event === "text-delta")).toHaveLength(2);
        expect(direct.events.filter((event) => event.event === "end")).toHaveLength(1);
      },
      silentTestTimeoutMs,
    );
  });
});
