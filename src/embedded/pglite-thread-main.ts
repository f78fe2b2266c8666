// The embedded database's thread (pglite-thread.ts starts it): PGlite and nothing else, so its
// statements never hold up the API's or the worker's event loop.
import { parentPort, workerData, type MessagePort } from "node:worker_threads";
import { PGlite, type Transaction } from "@electric-sql/pglite";
import { createPortRpc } from "../threads/port-rpc.ts";
import { createPreparedStatements } from "./pglite-prepared-statements.ts";
import type { PGliteCalls, PGliteThreadData, QueryShape } from "./pglite-thread.ts";

const parent = parentPort;
if (!parent) throw new Error("pglite-thread-main.ts runs only as a worker thread");
const { directory } = workerData as PGliteThreadData;
const pglite = await PGlite.create(directory);
const statements = createPreparedStatements(pglite);

interface OpenTransaction {
  /** Set once PGlite has granted the transaction (BEGIN ran). */
  transaction: Transaction | undefined;
  /**
   * Commit or roll back. A decision made before PGlite granted the transaction (its port closed
   * while BEGIN waited for the lock) is applied as soon as it is granted: otherwise that
   * transaction would hold PGlite's lock forever.
   */
  decide: (commit: boolean) => void;
  /** Settles once PGlite has committed or rolled back; rejects when BEGIN or COMMIT fails. */
  settled: Promise<void>;
}

const open = new Map<number, OpenTransaction>();
let nextTransactionId = 1;
const keepAsText = (value: string): string => value;

function optionsOf(shape: QueryShape): { rowMode: QueryShape["rowMode"]; parsers: Record<number, (value: string) => string> } {
  return { rowMode: shape.rowMode, parsers: Object.fromEntries(shape.rawTypes.map((oid) => [oid, keepAsText])) };
}

function transactionOf(transactionId: number): Transaction {
  const transaction = open.get(transactionId)?.transaction;
  if (!transaction) throw new Error(`no open transaction ${transactionId}`);
  return transaction;
}

async function finish(transactionId: number, commit: boolean): Promise<void> {
  const entry = open.get(transactionId);
  if (!entry) throw new Error(`no open transaction ${transactionId}`);
  open.delete(transactionId);
  entry.decide(commit);
  await entry.settled;
}

/** Serves one caller's port; its open transactions are rolled back when it goes away (a thread that died mid-transaction). */
function serve(port: MessagePort): void {
  const mine = new Set<number>();
  const calls: PGliteCalls = {
    async query(transactionId, text, params, shape) {
      const runner = transactionId === undefined ? pglite : transactionOf(transactionId);
      const options = optionsOf(shape);
      const result = (await statements.run(text, params, options, transactionId !== undefined)) ?? (await runner.query(text, params, options));
      statements.observe(result);
      const { rows, fields, affectedRows, rowCount, command } = result;
      return { rows, fields, affectedRows, rowCount, command };
    },
    begin: () =>
      new Promise<number>((resolve, reject) => {
        const transactionId = nextTransactionId++;
        const decision = Promise.withResolvers<boolean>();
        const entry: OpenTransaction = { transaction: undefined, decide: decision.resolve, settled: Promise.resolve() };
        open.set(transactionId, entry);
        mine.add(transactionId);
        entry.settled = pglite.transaction(async (transaction) => {
          entry.transaction = transaction;
          resolve(transactionId);
          if (!(await decision.promise)) await transaction.rollback();
        });
        entry.settled.catch((error: unknown) => {
          // BEGIN itself failed (the caller never got an id), or COMMIT did (finish reports it).
          open.delete(transactionId);
          mine.delete(transactionId);
          reject(error instanceof Error ? error : new Error(String(error)));
        });
      }),
    finish: async (transactionId, commit) => {
      mine.delete(transactionId);
      await finish(transactionId, commit);
    },
    close: async () => {
      // Shutdown: every transaction still open (any port's) is rolled back, or PGlite's close would wait for it.
      for (const transactionId of [...open.keys()]) void finish(transactionId, false).catch(() => undefined);
      await pglite.close();
    },
  };
  createPortRpc(port).serve("pglite", calls);
  port.once("close", () => {
    for (const transactionId of mine) void finish(transactionId, false).catch(() => undefined);
    mine.clear();
  });
}

serve(parent);
parent.on("message", (message: { type?: string; port?: MessagePort } | undefined) => {
  if (message?.type === "attach" && message.port) serve(message.port);
});
parent.postMessage({ type: "ready" });
