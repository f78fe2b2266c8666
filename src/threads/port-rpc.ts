import type { MessagePort } from "node:worker_threads";
import { findInCauseChain } from "../errors/cause-chain.ts";
import { DatabaseUnavailableError, isDatabaseUnavailable, schemaObjectFields, sqlStateOf } from "../storage/database-errors.ts";

/**
 * Method calls across a worker thread's MessagePort, both ways: `serve` answers
 * calls on named objects, `proxy` makes an object whose methods call them. Used
 * by `sluice start`: every thread reaches the embedded database's thread
 * (src/embedded/pglite-thread.ts), and the API thread reaches the worker thread's
 * sweeper, metrics and shutdown (start-worker-thread.ts).
 *
 * Arguments and results are structured-cloned (Dates survive). Errors cross as
 * what callers decide on: the message, the SQLSTATE with the names of the schema
 * objects involved (a unique violation's constraint), and whether the database
 * was unavailable (retryDatabase, database-errors.ts), never as text to match.
 */
export interface PortRpc {
  serve(name: string, target: object): void;
  proxy<T extends object>(name: string, methods: ReadonlyArray<keyof T & string>): T;
  /** Rejects every pending call and every later one (the other side is gone). */
  close(reason: Error): void;
}

interface CallMessage {
  rpc: "call";
  id: number;
  name: string;
  method: string;
  args: unknown[];
}

interface ReplyMessage {
  rpc: "reply";
  id: number;
  value?: unknown;
  /** `fields`: the schema-object fields of the database error in the chain, its SQLSTATE (`code`) among them. */
  error?: { message: string; unavailable: boolean; fields: Record<string, string> };
}

export function createPortRpc(port: MessagePort | { postMessage(message: unknown): void; on(event: "message", listener: (message: unknown) => void): unknown }): PortRpc {
  const targets = new Map<string, Record<string, unknown>>();
  const pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  let nextId = 1;
  let closedWith: Error | undefined;

  const answer = async (call: CallMessage): Promise<void> => {
    const method = targets.get(call.name)?.[call.method];
    try {
      if (typeof method !== "function") throw new Error(`no method ${call.name}.${call.method} is served`);
      const value: unknown = await (method as (...args: unknown[]) => unknown).apply(targets.get(call.name), call.args);
      port.postMessage({ rpc: "reply", id: call.id, value } satisfies ReplyMessage);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      const sqlState = sqlStateOf(error);
      const fields = sqlState === undefined ? {} : databaseFieldsOf(error, sqlState);
      port.postMessage({ rpc: "reply", id: call.id, error: { message, unavailable: isDatabaseUnavailable(error), fields } } satisfies ReplyMessage);
    }
  };

  port.on("message", (message: unknown) => {
    const typed = message as CallMessage | ReplyMessage | undefined;
    if (typed?.rpc === "call") void answer(typed);
    else if (typed?.rpc === "reply") {
      const waiting = pending.get(typed.id);
      if (!waiting) return;
      pending.delete(typed.id);
      if (typed.error) waiting.reject(rebuildError(typed.error));
      else waiting.resolve(typed.value);
    }
  });

  return {
    serve(name, target) {
      targets.set(name, target as Record<string, unknown>);
    },
    proxy<T extends object>(name: string, methods: ReadonlyArray<keyof T & string>): T {
      const proxy: Record<string, unknown> = {};
      for (const method of methods) {
        proxy[method] = (...args: unknown[]) =>
          new Promise((resolve, reject) => {
            if (closedWith) {
              reject(closedWith);
              return;
            }
            const id = nextId++;
            pending.set(id, { resolve, reject });
            try {
              port.postMessage({ rpc: "call", id, name, method, args } satisfies CallMessage);
            } catch (error) {
              // An argument that cannot be cloned: this call fails, and nothing waits for its reply.
              pending.delete(id);
              reject(error instanceof Error ? error : new Error(String(error)));
            }
          });
      }
      return proxy as T;
    },
    close(reason) {
      closedWith ??= reason;
      for (const waiting of pending.values()) waiting.reject(reason);
      pending.clear();
    },
  };
}

function rebuildError(serialized: NonNullable<ReplyMessage["error"]>): Error {
  if (serialized.unavailable) return new DatabaseUnavailableError(new Error(serialized.message));
  return Object.assign(new Error(serialized.message), serialized.fields);
}

/** The schema-object fields (never data) of the database error in the chain that carries `sqlState`. */
function databaseFieldsOf(error: unknown, sqlState: string): Record<string, string> {
  return (
    findInCauseChain(error, (link) => {
      if (link.code !== sqlState) return undefined;
      const fields: Record<string, string> = {};
      for (const field of schemaObjectFields) {
        const value = link[field];
        if (typeof value === "string") fields[field] = value;
      }
      return fields;
    }) ?? {}
  );
}
