import { sql } from "drizzle-orm";
import { selectRows, type Db } from "./database.ts";
import { conversations, messages } from "./schema.ts";

/** The listing's keyset position (conversations-repository.ts `PageCursor`, decoded). */
interface KeysetPosition {
  updatedAt: string;
  id: string;
}

/**
 * Where ts_headline marks a matched word. Private-use code points, which chat text practically
 * never holds; the service turns them into offsets (and drops any the text held itself).
 */
export const highlightStart = "\uE000";
export const highlightStop = "\uE001";

export interface SearchHit {
  conversation: Omit<typeof conversations.$inferSelect, "activeLeafId">;
  /** The newest message of the conversation that matched; null when only the title did. */
  message: { id: string; role: "user" | "assistant"; createdAt: Date; snippet: string } | null;
}

export interface SearchPage {
  items: SearchHit[];
  /** Where the next page starts; null on the last page. */
  next: KeysetPosition | null;
}

/**
 * A user's conversations whose title or message text matches `query` (PostgreSQL full-text
 * search, `websearch_to_tsquery` syntax: words, "phrases", `or`, `-word`), newest activity first,
 * keyset-paged on (updated_at, id) like the listing, so the same cursor format serves both.
 *
 * Messages are found through the GIN index `messages_content_search_idx` (the expression
 * below must stay identical to it); ts_headline runs only on the page's rows.
 */
export async function searchConversations(
  db: Db,
  userId: string,
  query: string,
  options: { limit: number; cursor: KeysetPosition | undefined },
): Promise<SearchPage> {
  const { limit, cursor } = options;
  const tsQuery = sql`websearch_to_tsquery('simple', ${withoutEmptyNegations(query)})`;
  const after = cursor ? sql`and (c.updated_at, c.id) < (${cursor.updatedAt}::timestamptz, ${cursor.id}::uuid)` : sql``;
  const headlineOptions = `StartSel=${highlightStart}, StopSel=${highlightStop}, MaxWords=24, MinWords=8, ShortWord=2, MaxFragments=1, FragmentDelimiter=" … "`;
  const rows = await selectRows<{
    id: string;
    user_id: string;
    title: string | null;
    created_at: string;
    updated_at: string;
    updated_at_text: string;
    message_id: string | null;
    message_role: "user" | "assistant" | null;
    message_created_at: string | null;
    snippet: string | null;
  }>(
    db,
    sql`
    with hits as (
      select distinct on (m.conversation_id) m.conversation_id, m.id, m.role, m.created_at, m.content
      from ${messages} m
      where m.user_id = ${userId} and to_tsvector('simple', m.content) @@ ${tsQuery}
      order by m.conversation_id, m.created_at desc, m.id desc
    ),
    page as (
      select c.id, c.user_id, c.title, c.created_at, c.updated_at,
             hits.id as message_id, hits.role as message_role, hits.created_at as message_created_at, hits.content
      from ${conversations} c
      left join hits on hits.conversation_id = c.id
      where c.user_id = ${userId}
        and (hits.id is not null or to_tsvector('simple', coalesce(c.title, '')) @@ ${tsQuery})
        ${after}
      order by c.updated_at desc, c.id desc
      limit ${limit + 1}
    )
    select id, user_id, title, to_json(created_at) #>> '{}' as created_at, to_json(updated_at) #>> '{}' as updated_at, updated_at::text as updated_at_text,
           message_id, message_role, to_json(message_created_at) #>> '{}' as message_created_at,
           case when message_id is null then null else ts_headline('simple', content, ${tsQuery}, ${headlineOptions}) end as snippet
    from page
    order by updated_at desc, id desc
  `,
  );
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return {
    items: page.map((row) => ({
      conversation: { id: row.id, userId: row.user_id, title: row.title, createdAt: new Date(row.created_at), updatedAt: new Date(row.updated_at) },
      message:
        row.message_id && row.message_role && row.message_created_at
          ? { id: row.message_id, role: row.message_role, createdAt: new Date(row.message_created_at), snippet: row.snippet ?? "" }
          : null,
    })),
    next: rows.length > limit && last ? { updatedAt: last.updated_at_text, id: last.id } : null,
  };
}

/** Tokens in and out (and the replies counted) over all of a user's assistant messages (those with usage recorded). */
export async function usageTotals(db: Db, userId: string): Promise<{ inputTokens: number; outputTokens: number; messages: number }> {
  const [row] = await selectRows<{ input_tokens: string; output_tokens: string; messages: number }>(
    db,
    sql`
    select coalesce(sum(input_tokens), 0)::bigint::text as input_tokens, coalesce(sum(output_tokens), 0)::bigint::text as output_tokens, count(*)::int as messages
    from ${messages}
    where user_id = ${userId} and input_tokens is not null and output_tokens is not null
  `,
  );
  return { inputTokens: Number(row?.input_tokens ?? 0), outputTokens: Number(row?.output_tokens ?? 0), messages: Number(row?.messages ?? 0) };
}

/**
 * websearch_to_tsquery fails ("tsquery stack too small", an internal error) on a few dozen `-`
 * that negate nothing (the route fuzzer's `q` of 36 dashes gave a 500). A `-` negates only the word
 * or "phrase" right after it, so a dash before anything else is a space, and a run of dashes (a
 * negated negation) is a space too.
 */
export function withoutEmptyNegations(query: string): string {
  return query.replace(/-{2,}/g, " ").replace(/-(?![\p{L}\p{N}"])/gu, " ");
}
