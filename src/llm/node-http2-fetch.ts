import { connect, constants, type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders, type Settings } from "node:http2";
import { abortError, providerIdleConnectionMs, streamResponse } from "./node-stream-fetch.ts";

/** Headers HTTP/2 forbids (RFC 9113 8.2.2; `te` is allowed only as "trailers"); `host` travels as `:authority`. */
const connectionHeaders = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "http2-settings", "host"]);

/**
 * Flow control: every stream of a connection shares the connection's window, 64 KB unless
 * enlarged, which over a real network round trip would hold a thousand streams' tokens back.
 */
const streamWindowBytes = 1 << 20;
const connectionWindowBytes = 32 << 20;

/** What a server allows before its SETTINGS arrive: RFC 9113 recommends no fewer than 100. */
const assumedConcurrentStreams = 100;

interface PooledSession {
  session: ClientHttp2Session;
  /** Streams opened on it and not yet closed. */
  open: number;
  /** SETTINGS_MAX_CONCURRENT_STREAMS of the server, once it said. */
  limit: number;
}

const pools = new Map<string, PooledSession[]>();

/**
 * A connection to the provider's origin with room for one more stream: `https:` negotiates h2 by
 * ALPN, `http:` speaks h2c with prior knowledge. A server caps the streams of one connection
 * (SETTINGS_MAX_CONCURRENT_STREAMS), and a stream past the cap would wait, silent, for another
 * to finish; so past it a new connection opens. A connection closes after `providerIdleConnectionMs` without
 * traffic (its open streams finish first), and a closed, failed or GOAWAY'd one is dropped from
 * the pool. A connection keeps the process alive only while it has streams open, as node:http's
 * agent does with its sockets.
 */
function sessionFor(origin: string): PooledSession {
  const pool = pools.get(origin) ?? [];
  pools.set(origin, pool);
  const usable = pool.find((pooled) => !pooled.session.closed && !pooled.session.destroyed && pooled.open < pooled.limit);
  if (usable) return usable;
  const pooled: PooledSession = { session: connect(origin, { settings: { initialWindowSize: streamWindowBytes } }), open: 0, limit: assumedConcurrentStreams };
  const { session } = pooled;
  session.once("connect", () => session.setLocalWindowSize(connectionWindowBytes));
  const forget = (): void => {
    const index = pool.indexOf(pooled);
    if (index !== -1) pool.splice(index, 1);
    if (pool.length === 0 && pools.get(origin) === pool) pools.delete(origin);
  };
  session.on("remoteSettings", (settings: Settings) => {
    pooled.limit = Math.max(1, settings.maxConcurrentStreams ?? assumedConcurrentStreams);
  });
  // A connection error fails the streams in flight (each rejects or errors on its own); here it only retires the session.
  session.on("error", forget);
  session.on("goaway", forget);
  session.on("close", forget);
  session.setTimeout(providerIdleConnectionMs, () => session.close());
  session.unref();
  pool.push(pooled);
  return pooled;
}

/**
 * The provider SDKs' `fetch` over HTTP/2 (PROVIDER_HTTP2): the streams of all generations to one
 * provider share one connection, so one socket read brings the tokens of every stream that has
 * one ready. Over HTTP/1.1 each token of each stream costs a read of its own; reading 1,000
 * streams at 20 tokens/s took 8.6 µs of CPU per token over HTTP/2 against 26.3 over HTTP/1.1
 * (BENCHMARKS.md, twelfth session). Same contract as nodeStreamFetch: a Response whose `body`
 * is the Node stream, an abort that rejects the call or errors the body being read.
 */
export function nodeHttp2Fetch(input: string | URL | Request, init?: RequestInit): Promise<Response> {
  const url = new URL(typeof input === "string" || input instanceof URL ? input : input.url);
  const signal = init?.signal ?? undefined;
  if (signal?.aborted) return Promise.reject(abortError(signal.reason));
  const body = init?.body;
  if (body !== undefined && body !== null && typeof body !== "string" && !(body instanceof Uint8Array) && !(body instanceof ArrayBuffer)) {
    return Promise.reject(new TypeError("nodeHttp2Fetch sends string or byte bodies only"));
  }
  const headers: Record<string, string> = { ":method": init?.method ?? "GET", ":path": `${url.pathname}${url.search}`, ":authority": url.host };
  new Headers(init?.headers).forEach((value, name) => {
    if (!connectionHeaders.has(name) && !(name === "te" && value !== "trailers")) headers[name] = value;
  });
  return new Promise<Response>((resolve, reject) => {
    let stream: ClientHttp2Stream;
    const pooled = sessionFor(url.origin);
    try {
      stream = pooled.session.request(headers, { endStream: body === undefined || body === null });
    } catch (error) {
      reject(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    if (pooled.open++ === 0) pooled.session.ref();
    untruncatable(stream);
    let answered = false;
    const onAbort = (): void => {
      const error = abortError(signal?.reason);
      // CANCEL tells the server the answer is no longer wanted (RFC 9113 8.7), not that this side failed.
      stream.close(constants.NGHTTP2_CANCEL);
      if (answered) stream.destroy(error);
      else reject(error);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    stream.once("close", () => {
      if (--pooled.open === 0) pooled.session.unref();
      signal?.removeEventListener("abort", onAbort);
      // Node closes a stream that was reset with CANCEL or NO_ERROR, or whose connection dropped,
      // without an error or a response: without this the call would wait forever.
      if (!answered) reject(resetError(stream));
    });
    // Before the answer an error rejects the call; after it, it reaches the reader of the body.
    stream.on("error", (error: Error) => {
      if (!answered) reject(error);
    });
    stream.once("response", (answer) => {
      answered = true;
      resolve(responseOf(url, stream, answer));
    });
    if (typeof body === "string" || body instanceof Uint8Array) stream.end(body);
    else if (body instanceof ArrayBuffer) stream.end(new Uint8Array(body));
  });
}

/**
 * Node ends the body of a stream reset with CANCEL (also what a dropped connection does to its
 * streams) as if it were complete, and destroys it without an error; the readers would take a
 * cut-off body for a whole one. Here such a destroy carries the reset as its error.
 */
function untruncatable(stream: ClientHttp2Stream): void {
  const destroy = stream.destroy.bind(stream);
  stream.destroy = (error?: Error) => destroy(error ?? (stream.rstCode !== undefined && stream.rstCode !== constants.NGHTTP2_NO_ERROR ? resetError(stream) : undefined));
}

function resetError(stream: ClientHttp2Stream): Error {
  // ECONNRESET: the SDKs and classifySdkError take it for a dropped connection, which it is.
  return Object.assign(new Error(`The HTTP/2 stream was closed before its end (RST_STREAM code ${String(stream.rstCode ?? "none")}).`), { code: "ECONNRESET" });
}

function responseOf(url: URL, stream: ClientHttp2Stream, answer: IncomingHttpHeaders): Response {
  const headers = new Headers();
  for (const [name, value] of Object.entries(answer)) {
    if (value !== undefined && !name.startsWith(":")) headers.set(name, Array.isArray(value) ? value.join(", ") : String(value));
  }
  // HTTP/2 has no reason phrase.
  return streamResponse(url, Number(answer[":status"] ?? 0), "", headers, stream);
}
