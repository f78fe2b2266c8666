import { SluiceError, type ErrorCode } from "../errors/catalog.ts";

/**
 * Why a provider stream failed. The worker retries only retryable kinds and
 * only before the first token (a retry after text was streamed would repeat it).
 */
export type ProviderErrorKind =
  | "rate-limited"
  | "server"
  | "connection"
  | "truncated"
  | "idle-timeout"
  | "bad-request"
  | "auth"
  | "aborted";

const kindDefinitions: Record<ProviderErrorKind, { code: ErrorCode; retryable: boolean }> = {
  "rate-limited": { code: "PROVIDER_RATE_LIMITED", retryable: true },
  server: { code: "PROVIDER_ERROR", retryable: true },
  connection: { code: "PROVIDER_ERROR", retryable: true },
  truncated: { code: "PROVIDER_TRUNCATED", retryable: true },
  "idle-timeout": { code: "PROVIDER_TIMEOUT", retryable: true },
  "bad-request": { code: "PROVIDER_ERROR", retryable: false },
  auth: { code: "PROVIDER_ERROR", retryable: false },
  // The catalog has no "cancelled" code; an abort is the caller's own decision, never retried.
  aborted: { code: "PROVIDER_ERROR", retryable: false },
};

export interface ProviderErrorOptions {
  message?: string;
  cause?: unknown;
  /** Only for "rate-limited": how long the provider asked us to wait. */
  retryAfterMs?: number;
  /** The provider's HTTP status, when there was a response. */
  status?: number;
}

/**
 * The only error a provider stream throws. Its `retryable` is per kind, not per
 * code (PROVIDER_ERROR is both a 5xx and a bad request): whether retrying the same
 * request may succeed. The worker retries on it before the first token.
 *
 * @example throw new ProviderError("rate-limited", { retryAfterMs: 2000, status: 429 });
 */
export class ProviderError extends SluiceError {
  readonly kind: ProviderErrorKind;
  readonly retryAfterMs: number | undefined;
  readonly providerStatus: number | undefined;
  override readonly retryable: boolean;

  constructor(kind: ProviderErrorKind, options: ProviderErrorOptions = {}) {
    const definition = kindDefinitions[kind];
    super(
      definition.code,
      options.message ?? `${kind}`,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = "ProviderError";
    this.kind = kind;
    this.retryable = definition.retryable;
    this.retryAfterMs = options.retryAfterMs;
    this.providerStatus = options.status;
  }
}

export function isProviderError(value: unknown): value is ProviderError {
  return value instanceof ProviderError;
}

/**
 * Parses `Retry-After` (delta seconds, possibly fractional, or an HTTP date) and
 * the non-standard `retry-after-ms` that OpenAI sends, preferring the latter.
 * Returns undefined when absent or unparsable; never negative.
 */
export function parseRetryAfterMs(
  headers: { get(name: string): string | null } | undefined,
  nowEpochMs: number = Date.now(),
): number | undefined {
  if (!headers) return undefined;
  const milliseconds = headers.get("retry-after-ms");
  if (milliseconds !== null && /^\s*\d+(\.\d+)?\s*$/.test(milliseconds)) return Math.ceil(Number(milliseconds));
  const value = headers.get("retry-after")?.trim();
  if (!value) return undefined;
  if (/^\d+(\.\d+)?$/.test(value)) return Math.ceil(Number(value) * 1000);
  const dateMs = Date.parse(value);
  if (Number.isNaN(dateMs)) return undefined;
  return Math.max(0, dateMs - nowEpochMs);
}

/**
 * Maps an HTTP error status from a provider to a kind: 429 rate limit,
 * 401/403 auth, 408/409 and 5xx (including Anthropic's 529 "overloaded")
 * transient server errors, other 4xx permanent bad requests.
 */
export function providerErrorFromStatus(
  status: number,
  headers: { get(name: string): string | null } | undefined,
  cause: unknown,
  message?: string,
): ProviderError {
  const base = { cause, status, ...(message === undefined ? {} : { message }) };
  if (status === 429) {
    const retryAfterMs = parseRetryAfterMs(headers);
    return new ProviderError("rate-limited", retryAfterMs === undefined ? base : { ...base, retryAfterMs });
  }
  if (status === 401 || status === 403) return new ProviderError("auth", base);
  if (status === 408 || status === 409 || status >= 500) return new ProviderError("server", base);
  return new ProviderError("bad-request", base);
}
