import type { Socket } from "node:net";
import { SluiceError, toErrorBody, type ErrorCode } from "../../errors/catalog.ts";
import { isDrainingAnsweredRequest } from "./drain-unread-body.ts";

/** Node's errors for a request it could not parse or that never arrived in full, onto the catalog. */
const clientErrorCodes: Readonly<Record<string, ErrorCode>> = {
  ERR_HTTP_REQUEST_TIMEOUT: "REQUEST_TIMEOUT",
  HPE_HEADER_OVERFLOW: "HEADERS_TOO_LARGE",
};

/**
 * Fastify's `clientErrorHandler`: what Node answers by itself before any route
 * runs (a request that is not HTTP, headers over 16 KiB, headers or body still
 * incomplete after LIMIT_REQUEST_TIMEOUT_MS), in the one error shape with a
 * catalog code, then the socket is closed. A socket that already answered its
 * request and is only draining that request's body gets no second answer.
 */
export function answerClientError(error: Error & { code?: string }, socket: Socket): void {
  if (error.code === "ECONNRESET" || socket.destroyed) return;
  if (socket.writable && !isDrainingAnsweredRequest(socket)) {
    const code = (error.code === undefined ? undefined : clientErrorCodes[error.code]) ?? "VALIDATION_FAILED";
    const sluiceError = new SluiceError(code, code === "VALIDATION_FAILED" ? "The request is not valid HTTP." : undefined);
    const body = JSON.stringify(toErrorBody(sluiceError));
    socket.write(
      `HTTP/1.1 ${sluiceError.status} ${reasonPhrases[sluiceError.status] ?? "Error"}\r\n` +
        `Content-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroySoon();
}

const reasonPhrases: Readonly<Record<number, string>> = { 400: "Bad Request", 408: "Request Timeout", 431: "Request Header Fields Too Large" };
