import { parse, protocol, type PGlite, type Results } from "@electric-sql/pglite";

/**
 * Named (prepared) statements for PGlite, which has none of its own: its `query` parses and plans
 * an unnamed statement on every call. In WebAssembly that planning is most of a statement's cost
 * (the worker's claim: 1.4 ms through `query`, 0.4 ms prepared; BENCHMARKS.md, ninth session),
 * and Sluice runs the same few texts on every message. A text seen a second time is parsed once
 * into a named statement (Parse, Describe); later calls only Bind and Execute it, and PostgreSQL
 * switches to a generic plan after five runs, as it does for node-postgres's named statements.
 *
 * - Statements are prepared only outside transactions, so a failed Parse never aborts one; a
 *   text that cannot be prepared (several commands, a table not created yet) runs through `query`.
 * - A named statement keeps the parameter types of its Parse. Any schema change (a statement whose
 *   command is not one that reads or writes rows: a migration's CREATE, ALTER, DROP) forgets them
 *   all, so no statement outlives the schema it was parsed against; they are closed before the
 *   next one is prepared.
 */
export interface PreparedStatements {
  /**
   * Runs `text` as a named statement when it has one (or, outside a transaction, can have one);
   * undefined means "run it through `query`". `inTransaction`: the caller holds PGlite's
   * transaction, so only its query lock is taken here.
   */
  run(text: string, params: unknown[], options: QueryOptions, inTransaction: boolean): Promise<Results | undefined>;
  /** Told every result that went through `query`, to catch schema changes. */
  observe(result: Pick<Results, "command">): void;
}

type QueryOptions = { rowMode: "array" | "object"; parsers: Record<number, (value: string) => unknown> };

interface Prepared {
  name: string;
  paramTypes: number[];
}

/** Texts a process runs repeatedly are few (one per call site); past these caps nothing new is prepared. */
const maxPrepared = 200;
const maxCounted = 2000;
/** Commands that read or write rows; any other (CREATE, ALTER, DROP, …) may change what a statement means. */
const rowCommands = new Set(["SELECT", "INSERT", "UPDATE", "DELETE", "MERGE", "COPY", "BEGIN", "COMMIT", "ROLLBACK", "SET", "SHOW", "VALUES", "FETCH", "LOCK", "SAVEPOINT", "RELEASE"]);

type TransactionLock = <T>(work: () => Promise<T>) => Promise<T>;

export function createPreparedStatements(pglite: PGlite): PreparedStatements {
  // PGlite's `query` takes this lock, then the query lock: a statement outside a transaction must
  // not run inside another caller's open one. Without it (another PGlite version) nothing is prepared.
  const transactionLock = (pglite as unknown as { _runExclusiveTransaction?: TransactionLock })._runExclusiveTransaction?.bind(pglite);
  let prepared = new Map<string, Prepared>();
  let unpreparable = new Set<string>();
  let seen = new Map<string, number>();
  /** Named statements forgotten but not yet closed on the server. */
  let toClose: string[] = [];
  let nextName = 1;
  const { serialize } = protocol;
  const send = (message: Uint8Array, syncToFs = false) => pglite.execProtocolStream(message, { syncToFs });

  const forgetAll = (): void => {
    toClose.push(...[...prepared.values()].map((statement) => statement.name));
    prepared = new Map();
    unpreparable = new Set();
    seen = new Map();
  };

  /** Under both locks, outside a transaction. */
  const closeForgotten = async (): Promise<void> => {
    if (toClose.length === 0) return;
    const names = toClose;
    toClose = [];
    try {
      for (const name of names) await send(serialize.close({ type: "S", name }));
    } finally {
      await send(serialize.sync());
    }
  };

  /** Under both locks, outside a transaction. */
  const prepare = async (text: string): Promise<Prepared | undefined> => {
    const name = `sluice_pglite_${nextName++}`;
    try {
      let described;
      try {
        await send(serialize.parse({ name, text }));
        described = await send(serialize.describe({ type: "S", name }));
      } finally {
        await send(serialize.sync());
      }
      const statement = { name, paramTypes: parse.parseDescribeStatementResults(described) };
      prepared.set(text, statement);
      return statement;
    } catch {
      if (unpreparable.size >= maxCounted) unpreparable = new Set();
      unpreparable.add(text);
      return undefined;
    }
  };

  /** Under the query lock (and, outside a transaction, the transaction lock). */
  const execute = async (statement: Prepared, params: unknown[], options: QueryOptions, inTransaction: boolean): Promise<Results> => {
    const values = params.map((value, index) => {
      if (value === null || value === undefined) return null;
      const serializer = pglite.serializers[statement.paramTypes[index] ?? 0];
      // As PGlite's `query` does: its serializer for the type, else the value's own text.
      return serializer ? serializer(value) : (value as { toString(): string }).toString();
    });
    const messages = [];
    try {
      messages.push(...(await send(serialize.bind({ statement: statement.name, values }))));
      messages.push(...(await send(serialize.describe({ type: "P" }))));
      messages.push(...(await send(serialize.execute({}))));
    } finally {
      // Ends the implicit transaction outside BEGIN (and writes it out, as `query` does), or
      // clears the error state after a failure.
      messages.push(...(await send(serialize.sync(), !inTransaction)));
    }
    const [result] = parse.parseResults(messages, pglite.parsers, options);
    if (!result) throw new Error("a prepared statement returned no result");
    return result;
  };

  /** Whether a text not prepared yet should be, counting this sighting. */
  const worthPreparing = (text: string): boolean => {
    if (unpreparable.has(text) || prepared.size >= maxPrepared) return false;
    const count = (seen.get(text) ?? 0) + 1;
    if (count >= 2) {
      seen.delete(text);
      return true;
    }
    if (seen.size >= maxCounted) seen = new Map();
    seen.set(text, count);
    return false;
  };

  return {
    run: async (text, params, options, inTransaction) => {
      // Closed or closing: `query` reports it as PGlite does.
      if (!transactionLock || pglite.closed) return undefined;
      if (inTransaction) {
        const statement = prepared.get(text);
        return statement ? pglite.runExclusive(() => execute(statement, params, options, true)) : undefined;
      }
      if (!prepared.has(text) && !worthPreparing(text)) return undefined;
      return transactionLock(() =>
        pglite.runExclusive(async () => {
          if (pglite.closed) return undefined;
          await closeForgotten();
          // Looked up again under the lock: a schema change may have forgotten it meanwhile.
          const statement = prepared.get(text) ?? (await prepare(text));
          return statement ? execute(statement, params, options, false) : undefined;
        }),
      );
    },
    observe: (result) => {
      if (result.command !== undefined && !rowCommands.has(result.command)) forgetAll();
    },
  };
}
