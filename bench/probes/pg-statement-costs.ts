// What each of a message's PostgreSQL statements costs: accept (API), claim and final save
// (worker), run the way Sluice runs them, one at a time, each message in a conversation of its own.
// On PostgreSQL, pg_stat_statements tracks nested statements too (foreign-key checks, the per-user
// limit's function) and the backend's CPU is read from /proc; with --pglite only wall time is told.
//   node bench/probes/pg-statement-costs.ts [messages=300] [--reply-chars=1200] [--pglite]
// PROBE_SQL="statement; statement" runs after the migrations (to try an index or a setting).
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { sql } from "drizzle-orm";
import { openDatabase, selectRows, type Database } from "../../src/storage/database.ts";
import { createConversationsRepository } from "../../src/storage/conversations-repository.ts";
import { createMessagesRepository } from "../../src/storage/messages-repository.ts";
import { createUsersRepository } from "../../src/storage/users-repository.ts";
import { startPostgresServer, type PostgresServer } from "../../test/support/servers/postgres-server.ts";

const messages = Number(process.argv[2] ?? 300);
const replyChars = Number(process.argv.find((argument) => argument.startsWith("--reply-chars="))?.split("=")[1] ?? 1200);
const embedded = process.argv.includes("--pglite");

let server: PostgresServer | undefined;
let admin: pg.Client | undefined;
let database: Database;
const pgliteDirectory = mkdtempSync(join(tmpdir(), "sluice-probe-"));
if (embedded) {
  database = await openDatabase({ url: undefined, dataDirectory: pgliteDirectory, poolSize: 1, statementTimeoutMs: 5000 });
} else {
  server = await startPostgresServer({ settings: { "pg_stat_statements.track": "all", "pg_stat_statements.track_planning": "on" } });
  admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
  await admin.query("CREATE DATABASE probe");
  await admin.query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
  const url = new URL(server.url);
  url.pathname = "/probe";
  database = await openDatabase({ url: url.toString(), dataDirectory: "/nonexistent", poolSize: 1, statementTimeoutMs: 5000 });
}
try {
  await database.migrate();
  const db = database.db;
  for (const statement of (process.env.PROBE_SQL ?? "").split(";").filter((text) => text.trim() !== "")) await db.execute(sql.raw(statement));
  const users = createUsersRepository(db);
  const conversations = createConversationsRepository(db);
  const repository = createMessagesRepository(db);
  const conversationIds: Array<{ userId: string; conversationId: string }> = [];
  for (let index = 0; index < messages; index += 1) {
    const user = await users.create(`probe${index}@example.com`, "x");
    conversationIds.push({ userId: user.id, conversationId: (await conversations.create(user.id, null)).id });
  }
  const pid = embedded ? undefined : (await selectRows<{ pid: number }>(db, sql`select pg_backend_pid() as pid`))[0]?.pid;
  const cpuOf = (): number => {
    if (pid === undefined) return 0;
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
    return (Number(fields[11]) + Number(fields[12])) * 10; // utime + stime, in ms (100 Hz ticks)
  };
  await admin?.query("SELECT pg_stat_statements_reset()");
  const reply = "token ".repeat(Math.ceil(replyChars / 6)).slice(0, replyChars);
  const cpu: Record<string, number> = {};
  const wall: Record<string, number> = {};
  const timed = async (phase: string, run: () => Promise<unknown>): Promise<void> => {
    const before = cpuOf();
    const started = performance.now();
    await run();
    wall[phase] = (wall[phase] ?? 0) + performance.now() - started;
    cpu[phase] = (cpu[phase] ?? 0) + cpuOf() - before;
  };
  const tasks: string[] = [];
  await timed("accept", async () => {
    for (const [index, { userId, conversationId }] of conversationIds.entries()) {
      const taskId = `task${index}`;
      tasks.push(taskId);
      await repository.acceptTurn({ conversationId, userId, userContent: "a question of about this length, as a user would ask it", taskId, requestedModel: undefined, models: { defaultModel: "m", allowed: ["m"] }, activeLimit: 10, placement: { kind: "append" } });
    }
  });
  await timed("claim", async () => {
    for (const taskId of tasks) await repository.beginAttempt(taskId, 1);
  });
  await timed("save", async () => {
    for (const taskId of tasks) await repository.finish(taskId, 1, { status: "completed", content: reply, lastSeq: 300, inputTokens: 10, outputTokens: 300, errorCode: null, errorMessage: null });
  });
  const perMessage = (figures: Record<string, number>): string => Object.entries(figures).map(([phase, ms]) => `${phase} ${(ms / messages).toFixed(3)}`).join(", ");
  console.log(`${embedded ? "PGlite" : "PostgreSQL"}, ${messages} messages, ${replyChars}-character replies; ms per message, wall: ${perMessage(wall)}`);
  if (!embedded) console.log(`  backend CPU (10-ms ticks): ${perMessage(cpu)}`);
  const rows = admin ? (await admin.query<{ calls: string; plans: string; plan: number; mean: number; query: string }>(
    "select calls, plans, mean_plan_time as plan, mean_exec_time as mean, query from pg_stat_statements where dbid = (select oid from pg_database where datname = 'probe') and calls >= $1 order by total_exec_time desc limit 10",
    [messages],
  )).rows : [];
  for (const row of rows) console.log(`  ${String(row.calls).padStart(6)}x ${row.mean.toFixed(3)} ms exec, ${row.plans} plans ${row.plan.toFixed(3)} ms  ${row.query.replace(/\s+/g, " ").slice(0, 110)}`);
} finally {
  await database.close();
  await admin?.end();
  await server?.stop();
  rmSync(pgliteDirectory, { recursive: true, force: true });
}
