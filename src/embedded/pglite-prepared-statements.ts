import { parse, protocol, type PGlite, type Results } from "@electric-sql/pglite";

/**
 * Named (prepared) statements for PGlite, which has none of its own: its `query` parses and plans
 * an unnamed statement on every call. In WebAssembly that planning is most of a statement's cost
 * (the worker's claim: 1.4 ms through `query`, 0.4 ms prepared; BENCHMARKS.md, ninth session),
 * and Sluice runs the same few texts on every message. A text seen a second time is parsed once
 * into a named statement (Parse, Describe); later calls only Bind and Execute it, and PostgreSQL
 * switches to a generic plan after five runs, as it does for node-postgres's named statements.
 *
 * Statements are prepared only outside transactions, so a failed Parse can never abort one; a
 * text that cannot be prepared (several commands, an undeterminable parameter type) runs as before.
 */
export interface PreparedStatements {
  /**
   * Runs `text` as a named statement when it has one (or, outside a transaction, can have one);
   * undefined means "run it through `query`". `inTransaction`: the caller holds PGlite's
   * transaction, so only its query lock is taken here.
   */
  run(text: string, params: unknown[], options: { rowMode: "array" | "object"; parsers: Record<number, (value: string) => unknown> }, inTransaction: boolean): Promise<Results | undefined>;
}

interface Prepared {
  name: string;
  paramTypes: number[];
}

/** Texts a process runs repeatedly are few (one per call site); past these caps nothing new is prepared. */
const maxPrepared = 200;
const maxCounted = 2000;
/** PostgreSQL: "cached plan must not change result type" (a table changed under a prepared SELECT *). */
const planChanged = "0A000";

type TransactionLock = <T>(work: () => Promise<T>) => Promise<T>;

export function createPreparedStatements(pglite: PGlite): PreparedStatements {
  // PGlite's `query` takes this lock, then the query lock: a statement outside a transaction must
  // not run inside another caller's open one. Without it (another PGlite version) nothing is prepared.
  const transactionLock = (pglite as unknown as { _runExclusiveTransaction?: TransactionLock })._runExclusiveTransaction?.bind(pglite);
  const prepared = new Map<string, Prepared>();
  const unpreparable = new Set<string>();
  let seen = new Map<string, number>();
  let nextName = 1;
  const { serialize } = protocol;
  const send = async (message: Uint8Array) => (await pglite.execProtocol(message, { syncToFs: false })).messages;

  const prepare = async (text: string): Promise<Prepared | undefined> => {
    const name = `sluice_pglite_${nextName++}`;
    try {
      const described = await pglite.runExclusive(async () => {
        try {
          await send(serialize.parse({ name, text }));
          return await send(serialize.describe({ type: "S", name }));
        } finally {
          await send(serialize.sync());
        }
      });
      const statement = { name, paramTypes: parse.parseDescribeStatementResults(described) };
      prepared.set(text, statement);
      return statement;
    } catch {
      unpreparable.add(text);
      return undefined;
    }
  };

  const execute = async (statement: Prepared, params: unknown[], options: Parameters<PreparedStatements["run"]>[2], inTransaction: boolean): Promise<Results> => {
    const values = params.map((value, index) => {
      if (value === null || value === undefined) return null;
      const serializer = pglite.serializers[statement.paramTypes[index] ?? 0];
      // As PGlite's `query` does: its serializer for the type, else the value's own text.
      return serializer ? serializer(value) : (value as { toString(): string }).toString();
    });
    const messages = await pglite.runExclusive(async () => {
      const received = [];
      try {
        received.push(...(await send(serialize.bind({ statement: statement.name, values }))));
        received.push(...(await send(serialize.describe({ type: "P" }))));
        received.push(...(await send(serialize.execute({}))));
      } finally {
        // Ends the implicit transaction outside BEGIN (and writes it out, as `query` does), or
        // clears the error state after a failure.
        received.push(...(await pglite.execProtocol(serialize.sync(), { syncToFs: !inTransaction })).messages);
      }
      return received;
    });
    const [result] = parse.parseResults(messages, pglite.parsers, options);
    if (!result) throw new Error("a prepared statement returned no result");
    return result;
  };

  const preparedFor = async (text: string, inTransaction: boolean): Promise<Prepared | undefined> => {
    const known = prepared.get(text);
    if (known || inTransaction || unpreparable.has(text) || prepared.size >= maxPrepared) return known;
    const count = (seen.get(text) ?? 0) + 1;
    if (count < 2) {
      if (seen.size >= maxCounted) seen = new Map();
      seen.set(text, count);
      return undefined;
    }
    seen.delete(text);
    return prepare(text);
  };

  return {
    run: async (text, params, options, inTransaction) => {
      if (!transactionLock) return undefined;
      const outside = async (): Promise<Results | undefined> => {
        const statement = await preparedFor(text, inTransaction);
        if (!statement) return undefined;
        try {
          return await execute(statement, params, options, inTransaction);
        } catch (error) {
          if ((error as { code?: unknown }).code !== planChanged || inTransaction) throw error;
          // The table changed shape under it (a migration): forget it; `query` runs this call.
          prepared.delete(text);
          return undefined;
        }
      };
      return inTransaction ? outside() : transactionLock(outside);
    },
  };
}
