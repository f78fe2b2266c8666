import type { ErrorInfo } from "./types.ts";

/** An error the API (or the network under it) reported; `code` is stable, see src/errors/catalog.ts. */
export class ApiError extends Error {
  readonly code: string;
  readonly status: number;

  constructor(code: string, message: string, status: number) {
    super(message);
    this.name = "ApiError";
    this.code = code;
    this.status = status;
  }

  toInfo(): ErrorInfo {
    return { code: this.code, message: this.message };
  }
}

/** Status 0: the request never got an HTTP answer (offline, server down, CORS). */
export const NETWORK_ERROR = "NETWORK_ERROR";

export function isApiError(value: unknown): value is ApiError {
  return value instanceof ApiError;
}
