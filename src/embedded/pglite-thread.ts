import { MessageChannel, Worker, type MessagePort } from "node:worker_threads";
import { DatabaseUnavailableError } from "../storage/database-errors.ts";
import { createPortRpc } from "../threads/port-rpc.ts";

/**
 * Embedded PostgreSQL (PGlite) on a thread of its own. PGlite runs each statement
 * synchronously in WebAssembly on the thread that owns it: owned by the API thread,
 * a ramp of starts stalled every stream's fan-out behind the statements (BENCHMARKS.md,
 * third session: 200 starts in a second, token p99 over a second). Here the API thread
 * and the worker thread each reach it over a MessagePort (pglite-thread-main.ts), and
 * PGlite's own lock keeps one statement or transaction at a time, as a single
 * connection does.
 */

/** A row mode and the type OIDs the caller keeps as text: what crosses instead of parser functions. */
export interface QueryShape {
  rowMode: "array" | "object";
  rawTypes: number[];
}

export interface QueryResult {
  rows: unknown[];
  fields: Array<{ name: string; dataTypeID: number }>;
  affectedRows?: number | undefined;
  rowCount?: number | undefined;
  command?: string | undefined;
}

/** What the database thread answers, per port (port-rpc.ts). */
export interface PGliteCalls {
  /** A statement, inside the transaction `transactionId` or on its own. */
  query(transactionId: number | undefined, text: string, params: unknown[], shape: QueryShape): Promise<QueryResult>;
  /** BEGIN; PGlite is this caller's until `finish`. */
  begin(): Promise<number>;
  /** COMMIT (rejects when it fails) or ROLLBACK. */
  finish(transactionId: number, commit: boolean): Promise<void>;
  close(): Promise<void>;
}

export const pgliteCallNames = ["query", "begin", "finish", "close"] as const satisfies ReadonlyArray<keyof PGliteCalls>;

export interface PGliteThreadData {
  directory: string;
}

type Parsers = Record<number, (value: string, typeId: number) => unknown>;
interface QueryOptions {
  rowMode?: "array" | "object";
  parsers?: Parsers;
}

/** The part of PGlite's client that drizzle-orm/pglite calls: `query` and `transaction`. */
export interface PGliteClient {
  query(text: string, params?: unknown[], options?: QueryOptions): Promise<QueryResult>;
  transaction<T>(callback: (transaction: PGliteTransaction) => Promise<T>): Promise<T>;
}

interface PGliteTransaction {
  query(text: string, params?: unknown[], options?: QueryOptions): Promise<QueryResult>;
  rollback(): Promise<void>;
  readonly closed: boolean;
}

export interface EmbeddedDatabase {
  readonly client: PGliteClient;
  /** Closes this side; the owner also closes PGlite (flushing it to disk) and ends its thread. */
  close(): Promise<void>;
  /** A port another thread opens this database on (connectEmbeddedDatabase); owner only. */
  portForThread?: () => MessagePort;
}

/** How long a close waits for PGlite to finish what it is running and flush. */
const closeBoundMs = 10_000;

export interface OwnedEmbeddedDatabase extends EmbeddedDatabase {
  portForThread: () => MessagePort;
  /** The database's thread, for tests that end it as a crash would. */
  readonly thread: Worker;
}

/** Starts PGlite on its own thread over `directory`; resolves once it is open. */
export async function startEmbeddedDatabase(directory: string, onThreadError: (error: Error) => void): Promise<OwnedEmbeddedDatabase> {
  const thread = new Worker(new URL("./pglite-thread-main.ts", import.meta.url), { workerData: { directory } satisfies PGliteThreadData });
  const client = clientOver(thread);
  let closing = false;
  await new Promise<void>((resolve, reject) => {
    const onMessage = (message: { type?: string } | undefined): void => {
      if (message?.type !== "ready") return;
      thread.off("message", onMessage);
      resolve();
    };
    thread.on("message", onMessage);
    thread.once("error", reject);
    thread.once("exit", (code) => reject(new Error(`the embedded database thread exited with code ${code} before it was open`)));
  });
  thread.on("error", onThreadError);
  thread.on("exit", (code) => {
    client.end(new DatabaseUnavailableError(new Error(`the embedded database thread exited (${code})`)));
    if (!closing) onThreadError(new Error(`the embedded database thread exited unexpectedly with code ${code}`));
  });
  return {
    client,
    thread,
    close: async () => {
      closing = true;
      // PGlite's close waits for the statement running; past the bound, the thread is ended
      // as a crash would end it (PostgreSQL's WAL recovery runs at the next open).
      let deadline: NodeJS.Timeout | undefined;
      try {
        await Promise.race([client.calls.close(), new Promise((resolve) => (deadline = setTimeout(resolve, closeBoundMs)))]);
      } finally {
        clearTimeout(deadline);
        await thread.terminate();
      }
    },
    portForThread: () => {
      const { port1, port2 } = new MessageChannel();
      thread.postMessage({ type: "attach", port: port2 }, [port2]);
      return port1;
    },
  };
}

/** Opens the embedded database another thread owns, over a port from its `portForThread`. */
export function connectEmbeddedDatabase(port: MessagePort): EmbeddedDatabase {
  const client = clientOver(port);
  // The owner's thread ended (or this port was closed): calls fail as "unavailable" (503) instead of waiting forever.
  port.once("close", () => client.end(new DatabaseUnavailableError(new Error("the embedded database thread is gone"))));
  return {
    client,
    close: () => {
      client.end(new DatabaseUnavailableError(new Error("the embedded database was closed")));
      port.close();
      return Promise.resolve();
    },
  };
}

function clientOver(port: Parameters<typeof createPortRpc>[0]): PGliteClient & { calls: PGliteCalls; end(reason: Error): void } {
  const rpc = createPortRpc(port);
  const calls = rpc.proxy<PGliteCalls>("pglite", pgliteCallNames);
  const query = (transactionId: number | undefined) => (text: string, params?: unknown[], options?: QueryOptions) =>
    calls.query(transactionId, text, params ?? [], { rowMode: options?.rowMode ?? "object", rawTypes: rawTypesOf(options?.parsers) });
  return {
    calls,
    end: (reason) => rpc.close(reason),
    query: query(undefined),
    async transaction<T>(callback: (transaction: PGliteTransaction) => Promise<T>): Promise<T> {
      const transactionId = await calls.begin();
      let closed = false;
      const inTransaction = query(transactionId);
      const transaction: PGliteTransaction = {
        query: async (text, params, options) => {
          if (closed) throw new Error("Transaction is closed");
          return await inTransaction(text, params, options);
        },
        rollback: async () => {
          closed = true;
          await calls.finish(transactionId, false);
        },
        get closed() {
          return closed;
        },
      };
      try {
        const result = await callback(transaction);
        if (!closed) {
          closed = true;
          await calls.finish(transactionId, true);
        }
        return result;
      } catch (error) {
        if (!closed) {
          closed = true;
          // The callback's error is what the caller needs; a failed rollback means the thread is gone.
          await calls.finish(transactionId, false).catch(() => undefined);
        }
        throw error;
      }
    },
  };
}

const checkedParsers = new WeakMap<Parsers, number[]>();

/**
 * Functions cannot cross a port. drizzle's only parsers keep date and time types as the text
 * PostgreSQL sends (identity functions), so the OIDs cross and the thread keeps those types raw.
 * Any other parser is refused rather than silently not applied.
 */
function rawTypesOf(parsers: Parsers | undefined): number[] {
  if (parsers === undefined) return [];
  const known = checkedParsers.get(parsers);
  if (known) return known;
  const oids = Object.keys(parsers).map(Number);
  for (const oid of oids) {
    const probe = `probe-${oid}`;
    if (parsers[oid]?.(probe, oid) !== probe) throw new Error(`only parsers that keep a value as text cross to the embedded database thread (type ${oid})`);
  }
  checkedParsers.set(parsers, oids);
  return oids;
}
