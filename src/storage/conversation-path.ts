import { getTableColumns, sql, type SQL } from "drizzle-orm";
import { selectRows, type Db } from "./database.ts";
import { conversations, messages } from "./schema.ts";

type MessageRow = typeof messages.$inferSelect;
type ConversationRow = typeof conversations.$inferSelect;

/**
 * The conversation is a tree of messages (schema.ts `parent_id`); what a reader sees, and what the
 * model is sent, is the active path: the conversation's active leaf and its ancestors. Messages
 * with the same parent are versions of one another (an edit, a regenerate).
 */
export interface Siblings {
  /** This message's place among its versions, oldest first (0-based). */
  index: number;
  count: number;
  /** The versions' ids, oldest first; this message's is `ids[index]`. */
  ids: string[];
}

export type PathMessage = MessageRow & { siblings: Siblings };

export interface PathPage {
  conversation: ConversationRow;
  /** The page, oldest first: the `limit` messages of the active path before the cursor (or its newest). */
  messages: PathMessage[];
  /** The message before the page's oldest on the path exists: ask again with `before` = the page's oldest id. */
  hasMore: boolean;
  /** The reply still pending or streaming in this conversation, on any branch. */
  activeGeneration: { taskId: string; messageId: string } | null;
}

/** Each message column as `m."snake" as "camel"`, so the row reads like drizzle's own. */
const messageColumns: SQL = sql.raw(
  Object.entries(getTableColumns(messages))
    .map(([key, column]) => `m."${column.name}" as "${key}"`)
    .join(", "),
);

interface PageRow extends Omit<MessageRow, "createdAt" | "updatedAt" | "completedAt" | "id" | "role" | "conversationId" | "userId" | "status"> {
  conversation: { id: string; user_id: string; title: string | null; active_leaf_id: string | null; created_at: string; updated_at: string };
  beforeFound: boolean;
  activeTaskId: string | null;
  activeMessageId: string | null;
  id: string | null;
  conversationId: string;
  userId: string;
  role: MessageRow["role"];
  status: MessageRow["status"];
  createdAt: Date | string;
  updatedAt: Date | string;
  completedAt: Date | string | null;
  siblingIds: string[] | null;
}

/**
 * One page of a user's conversation, newest first on its active path, in ONE statement: the
 * conversation (undefined when missing or another user's), `limit` messages walked up the
 * parent links from the active leaf, or from the parent of `before` (the keyset: a message id,
 * which fixes the page whatever is added or switched meanwhile), each with its versions, and the
 * active generation. The walk touches only the page's messages, so a page of a 1,000-turn
 * conversation costs what a page of a short one does.
 *
 * "before-unknown" when `before` is not a message of this conversation.
 */
export async function readPathPage(
  db: Db,
  userId: string,
  conversationId: string,
  options: { limit: number; before: string | undefined },
): Promise<PathPage | "before-unknown" | undefined> {
  const before = options.before ?? null;
  const rows = await selectRows<PageRow>(db, sql`
    with recursive target as (
      select c.*, (
          select b.parent_id from ${messages} b where b.id = ${before}::uuid and b.conversation_id = c.id
        ) as before_parent_id,
        ${before}::uuid is null or exists (select 1 from ${messages} b where b.id = ${before}::uuid and b.conversation_id = c.id) as before_found
      from ${conversations} c where c.id = ${conversationId} and c.user_id = ${userId}
    ),
    page as (
      select m.*, 1 as depth from ${messages} m
        where m.id = (select case when ${before}::uuid is null then active_leaf_id else before_parent_id end from target)
      union all
      select m.*, page.depth + 1 from ${messages} m join page on m.id = page.parent_id where page.depth < ${options.limit}
    )
    select json_build_object('id', t.id, 'user_id', t.user_id, 'title', t.title, 'active_leaf_id', t.active_leaf_id,
        'created_at', t.created_at, 'updated_at', t.updated_at) as conversation,
      t.before_found as "beforeFound",
      active.task_id as "activeTaskId", active.id as "activeMessageId",
      ${messageColumns}, siblings.ids as "siblingIds"
    from target t
    left join lateral (
      select a.id, a.task_id from ${messages} a where a.conversation_id = t.id and a.status in ('pending', 'streaming') limit 1
    ) active on true
    left join page m on true
    left join lateral (
      -- The versions of m: its parent's children, or the conversation's first messages.
      select json_agg(s.id order by s.created_at, s.id) as ids from (
        select id, created_at from ${messages} where parent_id = m.parent_id
        union all
        select id, created_at from ${messages} where m.parent_id is null and conversation_id = m.conversation_id and parent_id is null
      ) s
    ) siblings on m.id is not null
    order by m.depth desc`);
  const first = rows[0];
  if (!first) return undefined;
  if (!first.beforeFound) return "before-unknown";
  const { conversation } = first;
  const page = rows.flatMap((row) => (row.id === null ? [] : [toPathMessage(row, row.id)]));
  return {
    conversation: {
      id: conversation.id,
      userId: conversation.user_id,
      title: conversation.title,
      activeLeafId: conversation.active_leaf_id,
      createdAt: new Date(conversation.created_at),
      updatedAt: new Date(conversation.updated_at),
    },
    messages: page,
    hasMore: (page[0]?.parentId ?? null) !== null,
    activeGeneration: first.activeTaskId && first.activeMessageId ? { taskId: first.activeTaskId, messageId: first.activeMessageId } : null,
  };
}

function toPathMessage(row: PageRow, id: string): PathMessage {
  const { conversation: _conversation, beforeFound: _beforeFound, activeTaskId: _activeTaskId, activeMessageId: _activeMessageId, siblingIds, ...message } = row;
  const ids = siblingIds ?? [id];
  return {
    ...message,
    id,
    // PGlite and node-postgres both parse timestamptz here, but accept text too (as accept-turn.ts does).
    createdAt: new Date(row.createdAt),
    updatedAt: new Date(row.updatedAt),
    completedAt: row.completedAt === null ? null : new Date(row.completedAt),
    siblings: { index: Math.max(0, ids.indexOf(id)), count: ids.length, ids },
  };
}

/** The whole active path, oldest first (for clients that read a conversation whole: the AI SDK route's history). */
export async function readActivePath(db: Db, conversationId: string): Promise<MessageRow[]> {
  const rows = await selectRows<PageRow>(db, sql`
    with recursive page as (
      select m.*, 1 as depth from ${messages} m
        where m.id = (select active_leaf_id from ${conversations} where id = ${conversationId})
      union all
      select m.*, page.depth + 1 from ${messages} m join page on m.id = page.parent_id
    )
    select ${messageColumns} from page m order by m.depth desc`);
  return rows.flatMap((row) => {
    if (row.id === null) return [];
    const { siblings: _siblings, ...message } = toPathMessage({ ...row, siblingIds: null }, row.id);
    return [message];
  });
}

export type BranchOutcome = "switched" | "conversation-missing" | "message-missing" | "generating";

/**
 * Makes the branch through `messageId` the active path: the new active leaf is the newest
 * message under it (itself when it has no replies yet), i.e. the version of the conversation
 * last added to on that side. Refused while a reply is generating, whose branch is the active
 * path until it ends (acceptTurn makes the new reply the leaf), so the one-reply-at-a-time rule
 * and the reader's stream both stay on the path shown.
 */
export async function chooseBranch(db: Db, userId: string, conversationId: string, messageId: string): Promise<BranchOutcome> {
  const [row] = await selectRows<{ found: number; chosen: number; generating: number; updated: number }>(db, sql`
    with recursive target as (
      select c.id from ${conversations} c where c.id = ${conversationId} and c.user_id = ${userId}
    ),
    chosen as (
      select m.id, m.created_at from ${messages} m where m.id = ${messageId} and m.conversation_id = (select id from target)
    ),
    subtree as (
      select id, created_at, 0 as depth from chosen
      union all
      select m.id, m.created_at, s.depth + 1 from ${messages} m join subtree s on m.parent_id = s.id
    ),
    -- A question and its reply can share a timestamp (one statement; PGlite's clock steps by a
    -- millisecond): the deeper one, the reply, is the newer.
    leaf as (select id from subtree order by created_at desc, depth desc, id desc limit 1),
    generating as (
      select 1 from ${messages} where conversation_id = (select id from target) and status in ('pending', 'streaming')
    ),
    updated as (
      update ${conversations} set active_leaf_id = (select id from leaf)
      where id = (select id from target) and exists (select 1 from leaf) and not exists (select 1 from generating)
      returning id
    )
    select (select count(*) from target)::int as found, (select count(*) from chosen)::int as chosen,
      (select count(*) from generating)::int as generating, (select count(*) from updated)::int as updated`);
  if (!row || row.found === 0) return "conversation-missing";
  if (row.chosen === 0) return "message-missing";
  if (row.updated === 0) return "generating";
  return "switched";
}

/** The messages page cursor: the oldest message of the page before, opaque to clients (base64url). */
export function encodePathCursor(messageId: string): string {
  return Buffer.from(JSON.stringify(["before", messageId])).toString("base64url");
}

/** The message id of a cursor `encodePathCursor` wrote; undefined for anything else (a 400, never a query). */
export function decodePathCursor(text: string): string | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(text, "base64url").toString("utf8"));
    if (!Array.isArray(value) || value.length !== 2 || value[0] !== "before" || typeof value[1] !== "string") return undefined;
    return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(value[1]) ? value[1] : undefined;
  } catch {
    return undefined;
  }
}
