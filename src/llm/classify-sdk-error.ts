import { ProviderError, providerErrorFromStatus } from "./provider-error.ts";
import { nodeHttp2Fetch } from "./node-http2-fetch.ts";
import { nodeStreamFetch } from "./node-stream-fetch.ts";

type ErrorClass = abstract new (...args: never[]) => Error;

/**
 * What both official SDK clients are built with: retries off (the worker decides retries,
 * and only before the first token), no console logging (malformed chunks are reported as
 * ProviderError instead), and node-stream-fetch.ts as their fetch (the hot path's CPU), or
 * node-http2-fetch.ts with `http2` (PROVIDER_HTTP2).
 */
export function sdkClientOptions(options: { apiKey: string; baseUrl?: string; http2?: boolean }): { apiKey: string; baseURL?: string; maxRetries: 0; logLevel: "off"; fetch: typeof nodeStreamFetch } {
  const fetch = options.http2 === true ? nodeHttp2Fetch : nodeStreamFetch;
  return { apiKey: options.apiKey, ...(options.baseUrl === undefined ? {} : { baseURL: options.baseUrl }), maxRetries: 0, logLevel: "off", fetch };
}

/** The error classes both official SDKs (openai, @anthropic-ai/sdk) export under the same names. */
export interface SdkErrorClasses {
  APIError: ErrorClass;
  APIConnectionError: ErrorClass;
  APIUserAbortError: ErrorClass;
}

interface HttpErrorShape {
  status?: number | undefined;
  headers?: { get(name: string): string | null } | undefined;
}

/**
 * Maps an error from an official SDK's streaming call to a ProviderError.
 * Decided by class and HTTP status only, never by message text.
 */
export function classifySdkError(error: unknown, receivedText: boolean, classes: SdkErrorClasses): ProviderError {
  if (error instanceof classes.APIUserAbortError) {
    return new ProviderError("aborted", { message: "The request was aborted.", cause: error });
  }
  // APIConnectionError extends APIError (without a status) in both SDKs; it is handled below.
  if (error instanceof classes.APIError && !(error instanceof classes.APIConnectionError)) {
    const { status, headers } = error as HttpErrorShape;
    if (typeof status === "number") return providerErrorFromStatus(status, headers, error, `The provider answered HTTP ${status}.`);
    // No status: an error event inside an already-open stream (e.g. Anthropic "overloaded_error").
    return new ProviderError("server", { message: "The provider reported an error mid-stream.", cause: error });
  }
  if (error instanceof SyntaxError) {
    return new ProviderError("server", { message: "The provider sent malformed stream data.", cause: error });
  }
  // A connection error or the transport failing while reading the body (undici's
  // "terminated"): after text arrived the reply is cut short, before it the request never got through.
  return receivedText
    ? new ProviderError("truncated", { message: "The provider's stream broke off before a finish reason.", cause: error })
    : new ProviderError("connection", { message: "The connection to the provider failed.", cause: error });
}
