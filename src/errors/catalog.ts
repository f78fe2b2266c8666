/**
 * The error catalog: every error Sluice reports to a client, with a stable code.
 * Codes are never reused or renamed; clients branch on `code`, never on `message`.
 * Documented for users in PROTOCOL.md ("Errors") and README.md.
 */
export interface ErrorDefinition {
  /** HTTP status for API responses. */
  readonly status: number;
  /** Default human message; a throw site may give a more specific one. */
  readonly message: string;
  /** Whether the same request may succeed if retried later unchanged. */
  readonly retryable: boolean;
}

export const errorCatalog = {
  // Request shape and limits
  VALIDATION_FAILED: { status: 400, message: "The request is not valid.", retryable: false },
  INVALID_JSON: { status: 400, message: "The request body is not valid JSON.", retryable: false },
  INVALID_CURSOR: { status: 400, message: "The stream cursor (Last-Event-ID) is not valid.", retryable: false },
  BODY_TOO_LARGE: { status: 413, message: "The request body is too large.", retryable: false },
  MESSAGE_TOO_LONG: { status: 413, message: "The message is too long.", retryable: false },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: "Send the body as application/json.", retryable: false },
  URL_TOO_LONG: { status: 414, message: "A part of the URL is too long.", retryable: false },
  HEADERS_TOO_LARGE: { status: 431, message: "The request's headers are too large.", retryable: false },
  REQUEST_TIMEOUT: { status: 408, message: "The request did not arrive in time.", retryable: true },
  RATE_LIMITED: { status: 429, message: "Too many requests; retry after the time given in Retry-After.", retryable: true },
  TOO_MANY_OPEN_STREAMS: { status: 429, message: "Too many open streams for this user.", retryable: true },
  TOO_MANY_GENERATIONS: { status: 429, message: "Too many generations running for this user.", retryable: true },

  // Authentication and access
  UNAUTHENTICATED: { status: 401, message: "Sign in to continue: the token is missing, malformed, expired or invalid.", retryable: false },
  INVALID_CREDENTIALS: { status: 401, message: "The email or password is wrong.", retryable: false },
  EMAIL_TAKEN: { status: 409, message: "An account with this email already exists.", retryable: false },
  SIGN_IN_BUSY: { status: 503, message: "Too many sign-ins are being checked right now; retry after the time given in Retry-After.", retryable: true },

  // Resources
  NOT_FOUND: { status: 404, message: "Not found.", retryable: false },
  ROUTE_NOT_FOUND: { status: 404, message: "No such route.", retryable: false },
  METHOD_NOT_ALLOWED: { status: 405, message: "Method not allowed on this route.", retryable: false },
  GENERATION_IN_PROGRESS: { status: 409, message: "A reply is still being generated in this conversation.", retryable: true },
  IDEMPOTENCY_KEY_REUSED: { status: 422, message: "This Idempotency-Key was used with a different request.", retryable: false },
  MODEL_NOT_ALLOWED: { status: 400, message: "This model is not in the allowed list.", retryable: false },

  // Streams (see PROTOCOL.md)
  STREAM_NOT_FOUND: { status: 404, message: "No such stream.", retryable: false },
  STREAM_EXPIRED: { status: 410, message: "The stream's log has expired; read the saved message instead.", retryable: false },
  STREAM_TOO_LARGE: { status: 413, message: "The stream reached its size limit.", retryable: false },
  EVENT_TOO_LARGE: { status: 413, message: "A stream event exceeded the size limit.", retryable: false },
  STALE_ATTEMPT: { status: 409, message: "This generation attempt was superseded by a newer one.", retryable: false },

  // Generation outcomes (carried in `end` events with status "failed")
  PROVIDER_ERROR: { status: 502, message: "The language model provider failed.", retryable: true },
  PROVIDER_RATE_LIMITED: { status: 503, message: "The language model provider is rate limiting requests.", retryable: true },
  PROVIDER_TRUNCATED: { status: 502, message: "The provider's reply ended without a finish reason.", retryable: true },
  PROVIDER_TIMEOUT: { status: 504, message: "The provider sent nothing for too long.", retryable: true },
  WORKER_LOST: { status: 500, message: "The generation was interrupted too many times and gave up.", retryable: true },
  GENERATION_ORPHANED: { status: 500, message: "The generation stopped making progress and was ended.", retryable: true },
  // The newest message and the system prompt alone are over the model's context budget (CONTEXT_BUDGET_TOKENS).
  CONTEXT_TOO_LONG: { status: 413, message: "The message and the system prompt are too long for the model's context; shorten them.", retryable: false },
  // Carried in an `end` with status "cancelled": the conversation was deleted while its reply was generating.
  CONVERSATION_DELETED: { status: 410, message: "The conversation was deleted while its reply was being generated.", retryable: false },

  // Dependencies
  SERVICE_UNAVAILABLE: { status: 503, message: "A backing service is unavailable; try again shortly.", retryable: true },
  STORE_FULL: { status: 503, message: "The stream store (Redis) is out of memory; try again shortly.", retryable: true },
  NOT_READY: { status: 503, message: "Not ready: a dependency is down or migrations are pending.", retryable: true },
  INTERNAL: { status: 500, message: "Something went wrong on our side.", retryable: true },
} as const satisfies Record<string, ErrorDefinition>;

export type ErrorCode = keyof typeof errorCatalog;

/** The one error type Sluice throws on purpose. Its `code` decides the HTTP status and retry policy. */
export class SluiceError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly retryable: boolean;
  /** Extra, client-safe fields for the response body (never secrets). */
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    const definition: ErrorDefinition = errorCatalog[code];
    super(message ?? definition.message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "SluiceError";
    this.code = code;
    this.status = definition.status;
    this.retryable = definition.retryable;
    this.details = options?.details;
  }
}

/** The only error body shape Sluice sends: `{"error":{"code","message"}}`. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string } & Record<string, unknown>;
}

export function toErrorBody(error: SluiceError): ErrorBody {
  return { error: { ...error.details, code: error.code, message: error.message } };
}

/** Retry-After of a 503 that names no time of its own: a dependency is down, come back soon. */
const defaultUnavailableRetryAfterSeconds = 2;

/**
 * The headers an error answer carries beside its body: Retry-After when the error says when to come
 * back, and on every 503 (PROTOCOL.md 7: "retry with backoff"), so a client always has a hint.
 */
export function errorHeaders(error: SluiceError): Record<string, string> {
  const given = error.details?.retryAfterSeconds;
  const retryAfter = typeof given === "number" ? given : error.status === 503 ? defaultUnavailableRetryAfterSeconds : undefined;
  return retryAfter === undefined ? {} : { "Retry-After": String(retryAfter) };
}

export function isSluiceError(value: unknown): value is SluiceError {
  return value instanceof SluiceError;
}
