import { request, type Agent, type ClientRequest } from "node:http";

export interface SseHandlers {
  /** The response head arrived (status, before any event). */
  onOpen?: (status: number) => void;
  onEvent: (type: string, id: string | undefined, data: string) => void;
  /** The body ended or the request failed; `error` is set for failures. */
  onClose: (error?: Error) => void;
}

export interface SseConnection {
  /** Destroys the socket; onClose is not called afterwards. */
  close(): void;
  /** Characters of body text received so far (resumable-stream resumes by this count). */
  readonly characters: number;
}

/**
 * A deliberately small SSE reader on node:http: the load client runs thousands
 * of these, so it avoids fetch/undici stream overhead and parses only
 * `event:`, `id:` and `data:` lines (PROTOCOL.md section 2).
 */
export function openSse(
  url: string,
  options: { agent: Agent; headers?: Record<string, string>; method?: string; body?: unknown },
  handlers: SseHandlers,
): SseConnection {
  let buffer = "";
  let characters = 0;
  let closed = false;
  const finish = (error?: Error): void => {
    if (closed) return;
    closed = true;
    handlers.onClose(error);
  };
  const parseBlock = (block: string): void => {
    let type = "message";
    let id: string | undefined;
    let data = "";
    for (const line of block.split("\n")) {
      if (line.startsWith("data:")) data += (data === "" ? "" : "\n") + line.slice(line.charCodeAt(5) === 32 ? 6 : 5);
      else if (line.startsWith("event:")) type = line.slice(line.charCodeAt(6) === 32 ? 7 : 6);
      else if (line.startsWith("id:")) id = line.slice(line.charCodeAt(3) === 32 ? 4 : 3);
    }
    if (data !== "" || type !== "message") handlers.onEvent(type, id, data);
  };
  const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
  const headers = { Accept: "text/event-stream", ...(payload === undefined ? {} : { "Content-Type": "application/json" }), ...options.headers };
  const outgoing: ClientRequest = request(url, { agent: options.agent, method: options.method ?? "GET", headers }, (response) => {
    handlers.onOpen?.(response.statusCode ?? 0);
    response.setEncoding("utf8");
    response.on("data", (text: string) => {
      if (closed) return;
      characters += text.length;
      buffer += text;
      let boundary = buffer.indexOf("\n\n");
      // A handler may close this connection mid-chunk (a resume): nothing after that counts.
      while (boundary !== -1 && !closed) {
        const block = buffer.slice(0, boundary);
        buffer = buffer.slice(boundary + 2);
        if (block !== "" && !block.startsWith(":")) parseBlock(block);
        boundary = buffer.indexOf("\n\n");
      }
    });
    response.on("end", () => finish());
    response.on("error", (error) => finish(error));
  });
  outgoing.on("error", (error) => finish(error));
  outgoing.end(payload);
  return {
    close: () => {
      closed = true;
      outgoing.destroy();
    },
    get characters() {
      return characters;
    },
  };
}

/** POST/GET JSON over the shared agent; rejects on a non-2xx status with the body in the message. */
export function requestJson(url: string, options: { agent: Agent; method: string; body?: unknown; headers?: Record<string, string> }): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
    const outgoing = request(
      url,
      {
        agent: options.agent,
        method: options.method,
        headers: { ...(payload === undefined ? {} : { "Content-Type": "application/json" }), ...options.headers },
      },
      (response) => {
        let text = "";
        response.setEncoding("utf8");
        response.on("data", (chunk: string) => (text += chunk));
        response.on("end", () => {
          const status = response.statusCode ?? 0;
          if (status < 200 || status >= 300) reject(new Error(`${options.method} ${url}: ${status} ${text.slice(0, 300)}`));
          else resolve(text === "" ? undefined : JSON.parse(text));
        });
        response.on("error", reject);
      },
    );
    outgoing.on("error", reject);
    outgoing.end(payload);
  });
}
