import { randomUUID } from "node:crypto";
import { sql } from "drizzle-orm";
import { selectRows, type Db } from "./database.ts";
import { conversations, messages, type MessageRole } from "./schema.ts";

/**
 * Writes the earlier turns of a `/v1/chat/completions` call into its new conversation as final
 * messages, one after another on one branch (each the parent of the next) with the last as the
 * active leaf, so the worker's prompt (the reply's ancestors, messages-repository `beginAttempt`)
 * is the client's: acceptTurn appends the call's turn under it. They are dated before now(), one
 * microsecond apart in order, so they also list in the client's order by time. One statement.
 */
export async function insertHistory(db: Db, input: { conversationId: string; userId: string; turns: ReadonlyArray<{ role: MessageRole; content: string }> }): Promise<void> {
  const count = input.turns.length;
  if (count === 0) return;
  const ids = input.turns.map(() => randomUUID());
  const rows = input.turns.map(
    (turn, index) => sql`(${ids[index]}::uuid, ${input.conversationId}::uuid, ${input.userId}::uuid, ${ids[index - 1] ?? null}::uuid,
      ${turn.role}::text, ${turn.content}::text, 'completed', now() - make_interval(secs => ${(count - index) / 1_000_000}))`,
  );
  await selectRows(db, sql`
    with inserted as (
      insert into ${messages} (id, conversation_id, user_id, parent_id, role, content, status, created_at)
      values ${sql.join(rows, sql`, `)}
      returning id
    )
    update ${conversations} set active_leaf_id = ${ids.at(-1)}::uuid
    where id = ${input.conversationId}::uuid and exists (select 1 from inserted)`);
}
