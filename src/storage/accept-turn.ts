import { sql, type SQL } from "drizzle-orm";
import { selectRowsPrepared, type Db } from "./database.ts";
import { conversations, messages, users } from "./schema.ts";

type MessageRow = typeof messages.$inferSelect;

/**
 * Where a turn goes in the conversation's tree (schema.ts `parent_id`, `active_leaf_id`); the
 * new reply becomes the active leaf. Nothing is deleted: an edit or a regenerate adds a version.
 */
export type TurnPlacement =
  /** After the active leaf (POST /messages). */
  | { kind: "append" }
  /** A new version of this user message (its sibling), with its reply. */
  | { kind: "edit"; messageId: string }
  /** A new version of this reply, or a new reply to this user message; undefined: the active leaf. */
  | { kind: "regenerate"; messageId: string | undefined };

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
  placement: TurnPlacement;
}

export type TurnOutcome =
  | { kind: "accepted"; user: MessageRow | undefined; assistant: MessageRow }
  | { kind: "conversation-missing" }
  /** The edited or regenerated message is not in this conversation. */
  | { kind: "message-missing" }
  /** An edit of a reply: only a user message can be edited (a reply is regenerated). */
  | { kind: "not-a-user-message" }
  | { kind: "too-many-generations" };

interface OutcomeRow {
  found: number;
  active: number;
  anchorRole: MessageRow["role"] | null;
  id: string | null;
  parentId: string | null;
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
 * POST /messages, /regenerate and an edit in one statement. A statement is atomic, so no
 * BEGIN/COMMIT is needed, and the per-message cost on PostgreSQL is one round trip
 * instead of seven (BENCHMARKS.md, "statements per message"). Data-modifying CTEs
 * all run exactly once, whether or not the final SELECT reads them.
 *
 * The per-user limit is race-free: counting in this statement's own snapshot would let
 * parallel turns to different conversations all see the same count at READ COMMITTED,
 * so the count comes from `sluice_lock_active_generations`, which serialises one user's
 * turns on an advisory lock held to commit and counts in a fresh snapshot.
 *
 * Placement (TurnPlacement): an append reads only the conversation row it already joins (the
 * active leaf), so the hot path costs no extra lookup; an edit or a regenerate finds its anchor
 * message by primary key. The reply always becomes the active leaf, so a generating reply is on
 * the active path. Two turns racing in one conversation still meet at
 * `messages_one_active_per_conversation`, whichever branch each went to.
 */
export async function acceptTurn(db: Db, input: TurnInput): Promise<TurnOutcome> {
  const title = input.userContent?.replace(/\s+/g, " ").trim().slice(0, 80) || null;
  const allowed = input.models.allowed.length > 0 ? input.models.allowed : [input.models.defaultModel];
  const { placement } = input;
  const anchorId = placement.kind === "append" ? null : (placement.messageId ?? null);
  const rows = await selectRowsPrepared<OutcomeRow>(db, "sluice_accept_turn", sql`
    with target as (
      select c.id as conversation_id, c.active_leaf_id,
        coalesce(${input.requestedModel ?? null}::text,
          case when u.default_model in (${listOf(allowed)}) then u.default_model else ${input.models.defaultModel}::text end) as model,
        -- Locks the user's generation slots until this statement commits, then counts with a fresh
        -- snapshot (migration 0001): parallel turns of one user are admitted one after another.
        sluice_lock_active_generations(${input.userId}::uuid) as active
      from ${conversations} c join ${users} u on u.id = c.user_id
      where c.id = ${input.conversationId} and c.user_id = ${input.userId}
    ),
    admitted as (select * from target where active < ${input.activeLimit}),
    -- The message an edit or a regenerate is placed against (never read for an append).
    anchor as (
      select m.id, m.parent_id, m.role from ${messages} m
      where ${placement.kind}::text <> 'append'
        and m.id = coalesce(${anchorId}::uuid, (select active_leaf_id from target))
        and m.conversation_id = (select conversation_id from target)
    ),
    placed as (
      select a.conversation_id, a.model, gen_random_uuid() as user_message_id,
        case ${placement.kind}::text
          when 'append' then a.active_leaf_id
          when 'edit' then (select parent_id from anchor)
          else (select case when role = 'assistant' then parent_id else id end from anchor)
        end as parent_id
      from admitted a
      where case ${placement.kind}::text
        when 'append' then true
        when 'edit' then exists (select 1 from anchor where role = 'user')
        -- A regenerate in an empty conversation (no leaf) still starts a reply, as it always has.
        else exists (select 1 from anchor) or (${anchorId}::uuid is null and a.active_leaf_id is null)
      end
    ),
    inserted as (
      insert into ${messages} (id, conversation_id, user_id, parent_id, role, content, status, task_id, model, created_at)
      select user_message_id, conversation_id, ${input.userId}::uuid, parent_id, 'user', ${input.userContent ?? null}::text, 'completed', null, null, clock_timestamp()
        from placed where ${input.userContent ?? null}::text is not null
      union all
      select gen_random_uuid(), conversation_id, ${input.userId}::uuid,
          case when ${input.userContent ?? null}::text is not null then user_message_id else parent_id end,
          'assistant', '', 'streaming', ${input.taskId}::text, model, clock_timestamp()
        from placed
      returning id, conversation_id as "conversationId", user_id as "userId", parent_id as "parentId", role, content, status, task_id as "taskId",
        attempt, last_seq as "lastSeq", model, input_tokens as "inputTokens", output_tokens as "outputTokens",
        error_code as "errorCode", error_message as "errorMessage", created_at as "createdAt", updated_at as "updatedAt",
        completed_at as "completedAt"
    ),
    touched as (
      update ${conversations} set updated_at = now(), title = coalesce(title, ${title}::text),
        active_leaf_id = (select id from inserted where role = 'assistant')
      where id = (select conversation_id from placed) and exists (select 1 from inserted)
      returning id
    )
    select (select count(*) from target)::int as found, coalesce((select active from target), 0)::int as active,
      (select role from anchor) as "anchorRole", inserted.*
    from (select 1) as one left join inserted on true`);
  const first = rows[0];
  if (!first || first.found === 0) return { kind: "conversation-missing" };
  if (anchorId !== null && first.anchorRole === null) return { kind: "message-missing" };
  if (placement.kind === "edit" && first.anchorRole !== "user") return { kind: "not-a-user-message" };
  const inserted = rows.filter((row) => row.id !== null).map(toMessageRow);
  const assistant = inserted.find((row) => row.role === "assistant");
  if (!assistant) return { kind: "too-many-generations" };
  return { kind: "accepted", user: inserted.find((row) => row.role === "user"), assistant };
}

function toMessageRow(row: OutcomeRow): MessageRow {
  const { found: _found, active: _active, anchorRole: _anchorRole, id, role, ...rest } = row;
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
