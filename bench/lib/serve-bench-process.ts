import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createH2cServer } from "node:http2";

/**
 * The HTTP side every bench server process shares (baselines, the OpenAI-compatible provider):
 * listens on BENCH_PORT (0 = any) on loopback, prints `{"listening":port}` for bench/run.ts,
 * answers a handler's failure with `onError` (or a 500, or a cut connection once the answer has
 * begun), and closes every connection and exits on SIGTERM or SIGINT, after `onStop`.
 */
export async function serveBenchProcess(options: {
  handle: (request: IncomingMessage, response: ServerResponse) => Promise<void>;
  onError?: (response: ServerResponse, error: unknown) => void;
  onStop?: () => unknown;
}): Promise<void> {
  const onRequest = (request: IncomingMessage, response: ServerResponse): void => {
    void options.handle(request, response).catch((error: unknown) => {
      if (response.headersSent) response.destroy();
      else if (options.onError) options.onError(response, error);
      else response.writeHead(500).end(String(error));
    });
  };
  const server =
    process.env.BENCH_H2C === "true"
      ? // The compatibility API's request and response have what the handlers use of node:http's.
        createH2cServer({ settings: { maxConcurrentStreams: 100_000 } }, onRequest as never)
      : Object.assign(createServer(onRequest), { keepAliveTimeout: 60_000, maxConnections: 100_000 });
  await new Promise<void>((resolve) => server.listen(Number(process.env.BENCH_PORT ?? 0), "127.0.0.1", resolve));
  const address = server.address();
  process.stdout.write(`${JSON.stringify({ listening: typeof address === "object" && address ? address.port : 0 })}\n`);
  const stop = (): void => {
    if ("closeAllConnections" in server) server.closeAllConnections();
    server.close();
    void Promise.resolve(options.onStop?.()).finally(() => process.exit(0));
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}
