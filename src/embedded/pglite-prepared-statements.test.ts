import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sqlStateOf } from "../storage/database-errors.ts";
import { connectEmbeddedDatabase, startEmbeddedDatabase, type OwnedEmbeddedDatabase } from "./pglite-thread.ts";

// One database for the file (PGlite's start is most of a test's time); each test has a table of its own.
const directory = mkdtempSync(join(tmpdir(), "sluice-pglite-prepared-"));
let database: OwnedEmbeddedDatabase;
beforeAll(async () => {
  database = await startEmbeddedDatabase(directory, () => undefined);
});
afterAll(async () => {
  await database.close().catch(() => undefined);
  rmSync(directory, { recursive: true, force: true });
});

let tables = 0;
/** A fresh table; returns its name. */
async function table(): Promise<string> {
  const name = `items_${++tables}`;
  await database.client.query(`create table ${name} (id int primary key, name text not null, at timestamptz, data jsonb, flag boolean, tags text[])`);
  return name;
}

/** The texts PGlite holds as named statements (protocol-level Parse shows up here too). */
async function preparedTexts(): Promise<string[]> {
  const result = await database.client.query("select statement from pg_prepared_statements where name like 'sluice_pglite_%'");
  return result.rows.map((row) => (row as { statement: string }).statement);
}

const insertInto = (name: string): string => `insert into ${name} (id, name, at, data, flag, tags) values ($1, $2, $3, $4, $5, $6) returning *`;
const selectFrom = (name: string): string => `select id, name, at, data, flag, tags from ${name} where id = $1`;

describe("prepared statements of the embedded database", () => {
  it("prepares a text run a second time, and answers with the same rows, types and counts as an unprepared run", async () => {
    const items = await table();
    const insert = insertInto(items);
    const select = selectFrom(items);
    const at = new Date("2026-12-05T10:00:00.000Z");
    const inserted = [];
    for (const id of [1, 2, 3]) {
      inserted.push(await database.client.query(insert, [id, `item ${id}`, at, JSON.stringify({ id }), id % 2 === 0, ["a", `b${id}`]]));
    }
    expect(await preparedTexts()).toContain(insert);
    expect(inserted.map((result) => result.affectedRows)).toEqual([1, 1, 1]);
    expect(inserted[2]?.rows).toEqual([{ id: 3, name: "item 3", at, data: { id: 3 }, flag: false, tags: ["a", "b3"] }]);
    // The first run went through PGlite's own `query`; the third through the named statement.
    expect(Object.keys(inserted[0]?.rows[0] as object)).toEqual(Object.keys(inserted[2]?.rows[0] as object));
    expect(inserted[0]?.fields).toEqual(inserted[2]?.fields);

    const arrays = [];
    for (let round = 0; round < 3; round++) arrays.push(await database.client.query(select, [2], { rowMode: "array" }));
    expect(await preparedTexts()).toContain(select);
    expect(arrays[2]?.rows).toEqual([[2, "item 2", at, { id: 2 }, true, ["a", "b2"]]]);
    expect(arrays[2]).toEqual(arrays[0]);
    const missing = await database.client.query(select, [99]);
    expect(missing.rows).toEqual([]);
    expect(missing.fields.map((field) => field.name)).toEqual(["id", "name", "at", "data", "flag", "tags"]);
  });

  it("passes null parameters as SQL NULL", async () => {
    const items = await table();
    const insert = insertInto(items);
    for (const id of [1, 2, 3]) await database.client.query(insert, [id, "n", null, null, null, null]);
    expect(await preparedTexts()).toContain(insert);
    const rows = await database.client.query(`select count(*)::int as count from ${items} where at is null and data is null and flag is null and tags is null`);
    expect(rows.rows).toEqual([{ count: 3 }]);
  });

  it("carries a unique violation's SQLSTATE and constraint, and the statement works after it", async () => {
    const items = await table();
    const insert = insertInto(items);
    for (const id of [1, 2]) await database.client.query(insert, [id, "x", null, null, null, null]);
    expect(await preparedTexts()).toContain(insert);
    const failure: unknown = await database.client.query(insert, [1, "again", null, null, null, null]).catch((error: unknown) => error);
    expect(sqlStateOf(failure)).toBe("23505");
    expect((failure as { constraint?: string }).constraint).toBe(`${items}_pkey`);
    // The failed Bind/Execute was followed by Sync: the session is usable, the statement too.
    await database.client.query(insert, [3, "after", null, null, null, null]);
    expect((await database.client.query(`select count(*)::int as count from ${items}`)).rows).toEqual([{ count: 3 }]);
  });

  it("runs a prepared statement inside a transaction as part of it", async () => {
    const items = await table();
    const insert = insertInto(items);
    const select = selectFrom(items);
    for (const id of [1, 2]) await database.client.query(insert, [id, "kept", null, null, null, null]);
    await database.client.query(select, [1]);
    await database.client.query(select, [2]);
    // Both are named statements now: what follows runs them inside transactions.
    expect(await preparedTexts()).toEqual(expect.arrayContaining([insert, select]));
    await database.client.transaction(async (transaction) => {
      await transaction.query(insert, [3, "undone", null, null, null, null]);
      expect((await transaction.query(select, [3])).rows).toHaveLength(1);
      await transaction.rollback();
    });
    await expect(
      database.client.transaction(async (transaction) => {
        await transaction.query(insert, [4, "undone too", null, null, null, null]);
        throw new Error("changed my mind");
      }),
    ).rejects.toThrow("changed my mind");
    expect((await database.client.query(`select id from ${items} order by id`)).rows).toEqual([{ id: 1 }, { id: 2 }]);
  });

  it("forgets every named statement at a schema change, so none runs with the types it was parsed against", async () => {
    const items = await table();
    const insertCode = `insert into ${items} (id, name) values ($1, $2) returning name`;
    const everything = `select * from ${items} where id = $1`;
    for (const id of [1, 2]) await database.client.query(insertCode, [id, `00${id}`]);
    for (let round = 0; round < 2; round++) await database.client.query(everything, [1]);
    expect(await preparedTexts()).toEqual(expect.arrayContaining([insertCode, everything]));
    // Parsed while name was text; as an int column, '007' must arrive as 7 (and the reverse would
    // have kept a stale int parameter type: '007' stored as '7').
    await database.client.query(`alter table ${items} alter column name type int using name::int, add column extra int default 7`);
    expect((await database.client.query(insertCode, [3, "007"])).rows).toEqual([{ name: 7 }]);
    expect((await database.client.query(everything, [1])).rows).toEqual([expect.objectContaining({ id: 1, name: 1, extra: 7 })]);
    await database.client.query(`alter table ${items} alter column name type text`);
    for (const id of [4, 5, 6]) await database.client.query(insertCode, [id, "007"]);
    expect((await database.client.query(`select name from ${items} where id >= 4 order by id`)).rows).toEqual([{ name: "007" }, { name: "007" }, { name: "007" }]);
    // Each text has one named statement again: the forgotten ones were closed on the server.
    const texts = await preparedTexts();
    expect(texts.filter((text) => text === insertCode)).toHaveLength(1);
    expect(texts.filter((text) => text === everything)).toHaveLength(0);
  });

  it("keeps another port's prepared statement out of an open transaction, as one connection does", async () => {
    const items = await table();
    const insert = insertInto(items);
    const count = `select count(*)::int as count from ${items} where name = $1`;
    for (let round = 0; round < 2; round++) await database.client.query(count, ["inside"]);
    await database.client.query(insert, [1, "seed", null, null, null, null]);
    await database.client.query(insert, [2, "seed", null, null, null, null]);
    expect(await preparedTexts()).toEqual(expect.arrayContaining([insert, count]));
    const portForThread = database.portForThread;
    const other = connectEmbeddedDatabase(portForThread());
    // The thread serves a new port once its attach message is handled: wait for that here.
    await other.client.query("select 1");
    let outside: Promise<{ rows: unknown[] }> | undefined;
    try {
      await database.client.transaction(async (transaction) => {
        await transaction.query(insert, [3, "inside", null, null, null, null]);
        outside = other.client.query(count, ["inside"]);
        // Round trips of the transaction's own, so the outside statement has reached the thread
        // while the transaction is still open; had it run inside, it would count the uncommitted row
        // and the rollback would not stop it from having seen it.
        for (let i = 0; i < 3; i++) await transaction.query(count, ["inside"]);
        await transaction.rollback();
      });
      expect((await outside)?.rows).toEqual([{ count: 0 }]);
    } finally {
      await other.close();
    }
  });
});
