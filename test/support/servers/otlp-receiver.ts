import { createServer } from "node:http";
import { gunzipSync } from "node:zlib";

/** One span as OTLP/JSON carries it (ids in hex), with its process's service.name. */
export interface ReceivedSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  name: string;
  events: string[];
  attributes: Record<string, unknown>;
}

interface OtlpAttribute {
  key: string;
  value: Record<string, unknown>;
}

interface OtlpExport {
  resourceSpans?: Array<{
    resource?: { attributes?: OtlpAttribute[] };
    scopeSpans?: Array<{
      spans?: Array<{ traceId: string; spanId: string; parentSpanId?: string; name: string; events?: Array<{ name: string }>; attributes?: OtlpAttribute[] }>;
    }>;
  }>;
}

/**
 * A tiny OTLP/HTTP traces receiver on loopback: what a collector would get
 * from Sluice's exporter (JSON encoding, optionally gzip), flattened to spans.
 */
export async function startOtlpReceiver(): Promise<{ endpoint: string; spans: ReceivedSpan[]; close(): Promise<void> }> {
  const spans: ReceivedSpan[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      if (request.method !== "POST" || request.url !== "/v1/traces") {
        response.writeHead(404).end();
        return;
      }
      const raw = Buffer.concat(chunks);
      const body = request.headers["content-encoding"] === "gzip" ? gunzipSync(raw) : raw;
      spans.push(...flatten(JSON.parse(body.toString("utf8")) as OtlpExport));
      response.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    spans,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function flatten(exported: OtlpExport): ReceivedSpan[] {
  const result: ReceivedSpan[] = [];
  for (const resourceSpans of exported.resourceSpans ?? []) {
    const serviceName = attributesOf(resourceSpans.resource?.attributes)["service.name"];
    const service = typeof serviceName === "string" ? serviceName : "";
    for (const scopeSpans of resourceSpans.scopeSpans ?? []) {
      for (const span of scopeSpans.spans ?? []) {
        result.push({
          service,
          traceId: span.traceId,
          spanId: span.spanId,
          parentSpanId: span.parentSpanId === undefined || span.parentSpanId === "" ? undefined : span.parentSpanId,
          name: span.name,
          events: (span.events ?? []).map((event) => event.name),
          attributes: attributesOf(span.attributes),
        });
      }
    }
  }
  return result;
}

function attributesOf(attributes: OtlpAttribute[] | undefined): Record<string, unknown> {
  return Object.fromEntries((attributes ?? []).map((attribute) => [attribute.key, Object.values(attribute.value)[0]]));
}
