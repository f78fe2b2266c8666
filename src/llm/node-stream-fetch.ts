import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import type { Readable } from "node:stream";
import { buffer, text } from "node:stream/consumers";

/**
 * How long a provider connection waits, idle, for the next generation (ms). Node's global agent
 * closes it after 5 s, so a message sent after a longer pause paid a new TCP and TLS handshake to
 * the provider before its first token. 30 s stays under the idle timeouts of common load
 * balancers (60 s and more); a server that closes sooner says so (`Keep-Alive: timeout=`), and
 * Node's agent honours that, less a second.
 */
export const providerIdleConnectionMs = 30_000;

const agents = {
  http: new HttpAgent({ keepAlive: true, timeout: providerIdleConnectionMs, scheduling: "lifo" }),
  https: new HttpsAgent({ keepAlive: true, timeout: providerIdleConnectionMs, scheduling: "lifo" }),
};

/**
 * The `fetch` the provider SDKs are given: node:http(s) underneath, and a
 * Response whose `body` is the Node stream itself. Both official SDKs read a
 * streaming body by async iteration when the body offers it (openai's
 * ReadableStreamToAsyncIterable, the same in @anthropic-ai/sdk), so each SSE
 * chunk reaches their parser without the WHATWG-streams machinery of Node's
 * global fetch: about a quarter less CPU per token on the worker's hottest path
 * (bench/floors/openai-sdk-floor.ts; BENCHMARKS.md "Floors").
 *
 * It implements what the SDKs use: method, headers, a string or byte body,
 * `signal` (an abort rejects the call, or errors the body being read, with an
 * AbortError, as fetch does), and a Response with ok/status/statusText/headers/
 * url/body/text/json/arrayBuffer. Connection errors reject like fetch's do; the
 * SDKs wrap both.
 */
export function nodeStreamFetch(input: string | URL | Request, init?: RequestInit): Promise<Response> {
  const url = new URL(typeof input === "string" || input instanceof URL ? input : input.url);
  const headers: Record<string, string> = {};
  new Headers(init?.headers).forEach((value, name) => {
    headers[name] = value;
  });
  const signal = init?.signal ?? undefined;
  if (signal?.aborted) return Promise.reject(abortError(signal.reason));
  const secure = url.protocol === "https:";
  const request = secure ? httpsRequest : httpRequest;
  return new Promise<Response>((resolve, reject) => {
    let incoming: IncomingMessage | undefined;
    // Not the request's own `signal` option: after the answer it destroys the socket with an error
    // nobody listens to. Here an abort rejects the call, or errors the body being read, and nothing else.
    const onAbort = (): void => {
      const error = abortError(signal?.reason);
      outgoing.destroy();
      if (incoming) incoming.destroy(error);
      else reject(error);
    };
    const outgoing = request(url, { method: init?.method ?? "GET", headers, agent: secure ? agents.https : agents.http }, (answer) => {
      incoming = answer;
      // Errors reach the reader through iteration or text(); unread, they must not crash the process.
      answer.on("error", () => undefined);
      answer.once("close", () => signal?.removeEventListener("abort", onAbort));
      resolve(responseOf(url, answer));
    });
    outgoing.on("error", (error) => {
      signal?.removeEventListener("abort", onAbort);
      reject(error);
    });
    signal?.addEventListener("abort", onAbort, { once: true });
    const body = init?.body;
    if (body === undefined || body === null) outgoing.end();
    else if (typeof body === "string" || body instanceof Uint8Array) outgoing.end(body);
    else if (body instanceof ArrayBuffer) outgoing.end(new Uint8Array(body));
    else {
      outgoing.destroy();
      reject(new TypeError("nodeStreamFetch sends string or byte bodies only"));
    }
  });
}

/** What fetch rejects with on abort: a DOMException named AbortError (the SDKs check the name). */
export function abortError(reason: unknown): Error {
  return new DOMException(reason instanceof Error ? reason.message : "This operation was aborted", "AbortError");
}

function responseOf(url: URL, incoming: IncomingMessage): Response {
  const headers = new Headers();
  for (const [name, value] of Object.entries(incoming.headers)) {
    if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(", ") : value);
  }
  return streamResponse(url, incoming.statusCode ?? 0, incoming.statusMessage ?? "", headers, incoming);
}

/** The Response both fetches answer (this one and node-http2-fetch.ts): `body` is the Node stream itself. */
export function streamResponse(url: URL, status: number, statusText: string, headers: Headers, body: Readable): Response {
  const response = {
    ok: status >= 200 && status < 300,
    status,
    statusText,
    headers,
    url: url.toString(),
    redirected: false,
    type: "basic",
    body,
    get bodyUsed() {
      return body.readableEnded || body.destroyed;
    },
    text: () => text(body),
    json: async () => JSON.parse(await text(body)) as unknown,
    arrayBuffer: async () => {
      const bytes = await buffer(body);
      return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    },
  };
  return response as unknown as Response;
}
