import type { ErrorInfo } from "./types.ts";

/**
 * Plain words for the error codes a user can meet (codes from src/errors/catalog.ts).
 * The server's own message is shown beside these when it adds detail; we never
 * branch on message text, only on `code`.
 */
const plainWords: Record<string, string> = {
  NETWORK_ERROR: "Can't reach Sluice. Check your connection and try again.",
  VALIDATION_FAILED: "Some of what you entered isn't valid.",
  INVALID_CREDENTIALS: "That email and password don't match an account.",
  EMAIL_TAKEN: "There's already an account with this email. Try signing in instead.",
  UNAUTHENTICATED: "Your session has ended. Please sign in again.",
  RATE_LIMITED: "You're sending requests too quickly. Wait a moment and try again.",
  TOO_MANY_OPEN_STREAMS: "Too many chats are streaming at once. Close a tab and try again.",
  TOO_MANY_GENERATIONS: "Too many replies are being written at once. Wait for one to finish.",
  MESSAGE_TOO_LONG: "That message is too long to send.",
  BODY_TOO_LARGE: "That message is too long to send.",
  GENERATION_IN_PROGRESS: "A reply is still being written. Wait for it or press Stop.",
  MODEL_NOT_ALLOWED: "That model isn't available here.",
  NOT_FOUND: "This conversation doesn't exist or was deleted.",
  STREAM_NOT_FOUND: "This reply's live stream is gone; showing the saved message.",
  STREAM_EXPIRED: "This reply's live stream has expired; showing the saved message.",
  STREAM_TOO_LARGE: "The reply grew too long and was cut off.",
  EVENT_TOO_LARGE: "Part of the reply was too large to deliver.",
  PROVIDER_ERROR: "The language model ran into a problem. Try regenerating the reply.",
  PROVIDER_RATE_LIMITED: "The language model is busy right now. Try again in a minute.",
  PROVIDER_TRUNCATED: "The language model stopped mid-reply. Try regenerating it.",
  PROVIDER_TIMEOUT: "The language model stopped responding. Try regenerating the reply.",
  WORKER_LOST: "The reply was interrupted too many times. Try regenerating it.",
  GENERATION_ORPHANED: "The reply stopped making progress. Try regenerating it.",
  SERVICE_UNAVAILABLE: "Sluice is temporarily unavailable. Try again shortly.",
  NOT_READY: "Sluice is starting up. Try again in a moment.",
  INTERNAL: "Something went wrong on our side. Try again.",
};

export interface DescribedError {
  /** What a user should read first. */
  summary: string;
  /** The server's message when it says more than the summary, else null. */
  detail: string | null;
  code: string;
}

export function describeError(error: ErrorInfo): DescribedError {
  const summary = plainWords[error.code] ?? error.message;
  const detail = error.message && error.message !== summary ? error.message : null;
  return { summary, detail, code: error.code };
}
