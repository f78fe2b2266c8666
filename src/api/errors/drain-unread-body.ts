import type { IncomingMessage } from "node:http";
import type { Socket } from "node:net";

/** Sockets whose request was answered while its body was still arriving. */
const draining = new WeakSet<Socket>();

/**
 * Keeps reading (and discarding) a request body that was answered before it
 * arrived in full — 413 BODY_TOO_LARGE, 415, 401 before the body is read — so
 * the client can finish sending and then read the answer.
 *
 * Why: Fastify marks such answers `Connection: close`, and Node then destroys
 * the socket as soon as the answer is written. Body bytes still on the way hit
 * a closed socket, the kernel answers them with RST, and a client that sends
 * its whole body before reading (Python's http.client, curl, most SDKs) sees
 * EPIPE or ECONNRESET instead of the 413. So the answer goes without
 * `Connection: close`, the body is drained (HTTP framing stays intact, so the
 * connection may even be reused), and a client still sending after `limitMs`
 * is cut off: the connection closes after the answer, never before it.
 *
 * Returns false when the body had fully arrived (nothing to do).
 */
export function drainUnreadBody(request: IncomingMessage, limitMs: number): boolean {
  const socket = request.socket;
  if (request.complete || request.readableEnded || socket.destroyed) return false;
  if (draining.has(socket)) return true;
  draining.add(socket);
  // A raw, unref'd timer on purpose: socket hygiene on Node's own clock, like its requestTimeout.
  const cutOff = setTimeout(() => socket.destroy(), limitMs);
  cutOff.unref();
  const done = (): void => {
    clearTimeout(cutOff);
    draining.delete(socket);
  };
  request.once("end", done);
  socket.once("close", done);
  request.resume();
  return true;
}

/** True while `socket` drains the body of a request it already answered; nothing more may be written for it. */
export function isDrainingAnsweredRequest(socket: Socket): boolean {
  return draining.has(socket);
}
