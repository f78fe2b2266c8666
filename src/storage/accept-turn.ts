import { sql, type SQL } from "drizzle-orm";
import { selectRows, type Db } from "./database.ts";
import { conversations, messages, users } from "./schema.ts";

type MessageRow = typeof messages.$inferSelect;

export interface TurnInput {
  conversationId: string;
  userId: string;
  /** Undefined for a regenerate: only the assistant placeholder is inserted. */
  userContent: string | undefined;
  taskId: string;
  /** Already checked against the allow-list; undefined picks the user's default model when allowed, else `defaultModel`. */
  requestedModel: string | undefined;
  models: { defaultModel: string; allowed: readonly string[] };
  /** Refused (`too-many-generations`) when the user already has this many replies generating. */
  activeLimit: number;
  /** Regenerate: delete the conversation's last reply first, when it is final. */
  replaceLastReply: boolean;
}

export type TurnOutcome =
  | { kind: "accepted"; user: MessageRow | undefined; assistant: MessageRow }
  | { kind: "conversation-missing" }
  | { kind: "too-many-generations" };

interface OutcomeRow {
  found: number;
  active: number;
  id: string | null;
  conversationId: string;
  userId: string;
  role: MessageRow["role"] | null;
  content: string;
  status: MessageRow["status"];
  taskId: string | null;
  attempt: number;
  lastSeq: number | null;
  model: string | null;
  inputTokens: number | null;
  outputTokens: number | null;
  errorCode: string | null;
  errorMessage: string | null;
  createdAt: Date | string;
  updatedAt: Date | string;
  completedAt: Date | string | null;
}

const listOf = (values: readonly string[]): SQL => sql.join(values.map((value) => sql`${value}`), sql`, `);

/**
 * POST /messages and /regenerate in one statement. A statement is atomic, so no
 * BEGIN/COMMIT is needed, and the per-message cost on PostgreSQL is one round trip
 * instead of seven (BENCHMARKS.md, "statements per message"). Data-modifying CTEs
 * all run exactly once, whether or not the final SELECT reads them.
 *
 * The per-user limit is race-free: counting in this statement's own snapshot would let
 * parallel turns to different conversations all see the same count at READ COMMITTED,
 * so the count comes from `sluice_lock_active_generations`, which serialises one user's
 * turns on an advisory lock held to commit and counts in a fresh snapshot.
 */
export async function acceptTurn(db: Db, input: TurnInput): Promise<TurnOutcome> {
  const title = input.userContent?.replace(/\s+/g, " ").trim().slice(0, 80) || null;
  const allowed = input.models.allowed.length > 0 ? input.models.allowed : [input.models.defaultModel];
  const rows = await selectRows<OutcomeRow>(db, sql`
    with target as (
      select c.id as conversation_id,
        coalesce(${input.requestedModel ?? null}::text,
          case when u.default_model in (${listOf(allowed)}) then u.default_model else ${input.models.defaultModel}::text end) as model,
        -- Locks the user's generation slots until this statement commits, then counts with a fresh
        -- snapshot (migration 0001): parallel turns of one user are admitted one after another.
        sluice_lock_active_generations(${input.userId}::uuid) as active
      from ${conversations} c join ${users} u on u.id = c.user_id
      where c.id = ${input.conversationId} and c.user_id = ${input.userId}
    ),
    admitted as (select * from target where active < ${input.activeLimit}),
    replaced as (
      delete from ${messages} where ${input.replaceLastReply}::boolean and id = (
        select m.id from ${messages} m where m.conversation_id = (select conversation_id from admitted)
        order by m.created_at desc, m.id desc limit 1)
      and role = 'assistant' and status not in ('pending', 'streaming')
      returning id
    ),
    inserted as (
      insert into ${messages} (conversation_id, user_id, role, content, status, task_id, model, created_at)
      select conversation_id, ${input.userId}::uuid, 'user', ${input.userContent ?? null}::text, 'completed', null, null, clock_timestamp()
        from admitted where ${input.userContent ?? null}::text is not null
      union all
      select conversation_id, ${input.userId}::uuid, 'assistant', '', 'streaming', ${input.taskId}::text, model, clock_timestamp()
        from admitted
      returning id, conversation_id as "conversationId", user_id as "userId", role, content, status, task_id as "taskId",
        attempt, last_seq as "lastSeq", model, input_tokens as "inputTokens", output_tokens as "outputTokens",
        error_code as "errorCode", error_message as "errorMessage", created_at as "createdAt", updated_at as "updatedAt",
        completed_at as "completedAt"
    ),
    touched as (
      update ${conversations} set updated_at = now(), title = coalesce(title, ${title}::text)
      where id = (select conversation_id from admitted) and exists (select 1 from inserted)
      returning id
    )
    select (select count(*) from target)::int as found, coalesce((select active from target), 0)::int as active, inserted.*
    from (select 1) as one left join inserted on true`);
  const first = rows[0];
  if (!first || first.found === 0) return { kind: "conversation-missing" };
  const inserted = rows.filter((row) => row.id !== null).map(toMessageRow);
  const assistant = inserted.find((row) => row.role === "assistant");
  if (!assistant) return { kind: "too-many-generations" };
  return { kind: "accepted", user: inserted.find((row) => row.role === "user"), assistant };
}

function toMessageRow(row: OutcomeRow): MessageRow {
  const { found: _found, active: _active, id, role, ...rest } = row;
  if (id === null || role === null) throw new Error("an inserted message row without id or role");
  return {
    ...rest,
    id,
    role,
    // A new turn has no reasoning yet (the final save writes it).
    reasoning: "",
    reasoningDurationMs: null,
    // PGlite and node-postgres both parse timestamptz, but a JSON round trip would not: accept either.
    createdAt: new Date(row.createdAt),
    updatedAt: new Date(row.updatedAt),
    completedAt: row.completedAt === null ? null : new Date(row.completedAt),
  };
}
