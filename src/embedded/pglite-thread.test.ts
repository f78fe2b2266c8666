import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { isDatabaseUnavailable, sqlStateOf } from "../storage/database-errors.ts";
import { connectEmbeddedDatabase, startEmbeddedDatabase, type EmbeddedDatabase, type OwnedEmbeddedDatabase } from "./pglite-thread.ts";

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function started(): Promise<{ owner: OwnedEmbeddedDatabase; threadErrors: Error[] }> {
  const directory = mkdtempSync(join(tmpdir(), "sluice-pglite-thread-"));
  const threadErrors: Error[] = [];
  const owner = await startEmbeddedDatabase(directory, (error) => threadErrors.push(error));
  cleanups.push(async () => {
    await owner.close().catch(() => undefined);
    rmSync(directory, { recursive: true, force: true });
  });
  await owner.client.query("create table items (id int primary key, name text not null)");
  return { owner, threadErrors };
}

function attached(owner: EmbeddedDatabase): EmbeddedDatabase {
  const portForThread = owner.portForThread;
  if (!portForThread) throw new Error("the owner gives ports");
  const other = connectEmbeddedDatabase(portForThread());
  cleanups.push(() => other.close());
  return other;
}

async function names(database: EmbeddedDatabase): Promise<string[]> {
  const result = await database.client.query("select name from items order by id");
  return result.rows.map((row) => (row as { name: string }).name);
}

describe("embedded PGlite on its own thread", () => {
  it("commits a transaction for every port and rolls back one whose callback throws", async () => {
    const { owner } = await started();
    const other = attached(owner);
    await owner.client.transaction(async (transaction) => {
      await transaction.query("insert into items values ($1, $2)", [1, "kept"]);
    });
    await expect(
      other.client.transaction(async (transaction) => {
        await transaction.query("insert into items values ($1, $2)", [2, "undone"]);
        throw new Error("changed my mind");
      }),
    ).rejects.toThrow("changed my mind");
    await other.client.transaction(async (transaction) => {
      await transaction.query("insert into items values ($1, $2)", [3, "rolled back by hand"]);
      await transaction.rollback();
    });
    expect(await names(other)).toEqual(["kept"]);
    expect(await names(owner)).toEqual(["kept"]);
  });

  it("carries a unique violation's SQLSTATE and constraint across the port", async () => {
    const { owner } = await started();
    const other = attached(owner);
    await other.client.query("insert into items values (1, 'a')");
    const failure: unknown = await other.client.query("insert into items values (1, 'b')").catch((error: unknown) => error);
    expect(sqlStateOf(failure)).toBe("23505");
    expect((failure as { constraint?: string }).constraint).toBe("items_pkey");
    expect((failure as { table?: string }).table).toBe("items");
  });

  it("keeps another port's statement out of an open transaction, as one connection does", async () => {
    const { owner } = await started();
    const other = attached(owner);
    let outside: Promise<unknown> | undefined;
    await owner.client.transaction(async (transaction) => {
      await transaction.query("insert into items values (1, 'inside')");
      outside = other.client.query("insert into items values (2, 'outside')");
      // Round trips of the transaction's own, so the outside statement has reached the thread
      // while the transaction is still open; had it run inside, the rollback would undo it.
      for (let i = 0; i < 3; i++) await transaction.query("select count(*) from items");
      await transaction.rollback();
    });
    await outside;
    expect(await names(owner)).toEqual(["outside"]);
  });

  it("rolls back a transaction whose port closed while its BEGIN waited for the lock, so the database stays usable", async () => {
    const { owner } = await started();
    const other = attached(owner);
    let abandoned: Promise<unknown> | undefined;
    await owner.client.transaction(async (transaction) => {
      abandoned = other.client.transaction((otherTransaction) => otherTransaction.query("insert into items values (9, 'abandoned')")).catch((error: unknown) => error);
      // Round trips of our own, so the other port's BEGIN is queued on PGlite's lock before the port closes.
      for (let i = 0; i < 3; i++) await transaction.query("select count(*) from items");
      await other.close();
      await transaction.query("insert into items values (1, 'kept')");
    });
    expect(isDatabaseUnavailable(await abandoned)).toBe(true);
    // Before the fix, the abandoned transaction was granted the lock afterwards and held it forever: this hung.
    expect(await names(owner)).toEqual(["kept"]);
  });

  it("keeps the caller's event loop turning while a heavy statement runs", async () => {
    const { owner } = await started();
    let ticks = 0;
    let ticking = true;
    const tick = (): void => {
      ticks += 1;
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    await owner.client.query("select count(*) from generate_series(1, 3000000)");
    ticking = false;
    // In process, PGlite runs the statement synchronously: the loop could not turn at all until it returned.
    expect(ticks).toBeGreaterThan(10);
  });

  it("fails every pending and later call, and reports it, when the thread dies", async () => {
    const { owner, threadErrors } = await started();
    const other = attached(owner);
    // Both calls are in flight when the thread ends; their failures are awaited below.
    const failures = Promise.allSettled([
      other.client.query("select count(*) from generate_series(1, 50000000)"),
      owner.client.query("select count(*) from generate_series(1, 50000000)"),
    ]);
    // Ends the thread without the orderly close: what a crash of the WebAssembly looks like from here.
    await owner.thread.terminate();
    const unavailable = (settled: PromiseSettledResult<unknown>): boolean => settled.status === "rejected" && isDatabaseUnavailable(settled.reason);
    expect((await failures).map(unavailable)).toEqual([true, true]);
    // Later calls fail at once, as "unavailable" (the API's 503), instead of waiting for a thread that is gone.
    const later = await Promise.allSettled([owner.client.query("select 1"), other.client.query("select 1"), other.client.transaction(() => Promise.resolve())]);
    expect(later.map(unavailable)).toEqual([true, true, true]);
    expect(threadErrors.map((error) => error.message)).toEqual([expect.stringContaining("exited unexpectedly")]);
  });
});
