import { sql } from "drizzle-orm";
import { check, index, integer, jsonb, pgTable, primaryKey, text, timestamp, uniqueIndex, uuid, type AnyPgColumn } from "drizzle-orm/pg-core";

const createdAt = () => timestamp("created_at", { withTimezone: true, mode: "date" }).notNull().defaultNow();
const updatedAt = () => timestamp("updated_at", { withTimezone: true, mode: "date" }).notNull().defaultNow();

export const users = pgTable("users", {
  id: uuid("id").primaryKey().defaultRandom(),
  /** Stored lower-cased and trimmed, so uniqueness is case-insensitive. */
  email: text("email").notNull().unique(),
  passwordHash: text("password_hash").notNull(),
  defaultModel: text("default_model"),
  systemPrompt: text("system_prompt"),
  createdAt: createdAt(),
  updatedAt: updatedAt(),
});

/** Opaque bearer tokens: only their SHA-256 is stored, so a database leak yields no usable token. */
export const sessions = pgTable(
  "sessions",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    userId: uuid("user_id").notNull().references(() => users.id, { onDelete: "cascade" }),
    tokenHash: text("token_hash").notNull().unique(),
    createdAt: createdAt(),
    expiresAt: timestamp("expires_at", { withTimezone: true, mode: "date" }).notNull(),
    /** For SESSION_IDLE_TIMEOUT_MINUTES; refreshed at most once a minute per session, off the request path. */
    lastUsedAt: timestamp("last_used_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
  },
  // The purge deletes expired and idle sessions in bounded batches through these two indexes.
  (table) => [index("sessions_user_idx").on(table.userId), index("sessions_expires_idx").on(table.expiresAt), index("sessions_last_used_idx").on(table.lastUsedAt)],
);

export const conversations = pgTable(
  "conversations",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    userId: uuid("user_id").notNull().references(() => users.id, { onDelete: "cascade" }),
    title: text("title"),
    /**
     * The newest message of the branch the user is reading (the conversation is a tree of messages,
     * `messages.parent_id`): the active path is this message and its ancestors. A new message is
     * appended under it; an edit or a regenerate moves it to the new reply. Null while empty.
     * No foreign key: messages go only with their conversation, and a key would make every deleted
     * message look up the conversations that point at it (a scan without another index).
     */
    activeLeafId: uuid("active_leaf_id"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  // The listing query: a user's conversations, newest activity first, keyset-paginated on (updated_at, id).
  (table) => [index("conversations_user_updated_idx").on(table.userId, table.updatedAt.desc(), table.id.desc())],
);

export const messageStatuses = ["pending", "streaming", "completed", "cancelled", "failed"] as const;
export type MessageStatus = (typeof messageStatuses)[number];
export const messageRoles = ["user", "assistant"] as const;
export type MessageRole = (typeof messageRoles)[number];

export const messages = pgTable(
  "messages",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    conversationId: uuid("conversation_id").notNull().references(() => conversations.id, { onDelete: "cascade" }),
    /** Denormalised owner, so a task id resolves to its owner in one indexed lookup. */
    userId: uuid("user_id").notNull().references(() => users.id, { onDelete: "cascade" }),
    /**
     * The message this one follows: a user message's is the reply before it, a reply's its question;
     * null for a conversation's first message. Messages with the same parent are versions of one
     * another (an edit, a regenerate): branches, never deleted.
     */
    parentId: uuid("parent_id").references((): AnyPgColumn => messages.id, { onDelete: "cascade" }),
    role: text("role", { enum: messageRoles }).notNull(),
    /** The answer: what search, history and the model's next prompt read. */
    content: text("content").notNull().default(""),
    /**
     * The model's visible reasoning, the part before `content` (PROTOCOL.md 3, `reasoning-delta`);
     * shown under "Thinking", never sent back to the model.
     */
    reasoning: text("reasoning").notNull().default(""),
    /** From the first reasoning delta to the answer's first (or the last reasoning delta), as the worker saw it; null without reasoning. */
    reasoningDurationMs: integer("reasoning_duration_ms"),
    status: text("status", { enum: messageStatuses }).notNull(),
    /** The generation's task id (= BullMQ job id = stream id); assistant messages only. */
    taskId: text("task_id").unique(),
    /** The generation attempt that may still write this message (fencing for zombie workers). */
    attempt: integer("attempt").notNull().default(0),
    lastSeq: integer("last_seq"),
    model: text("model"),
    inputTokens: integer("input_tokens"),
    outputTokens: integer("output_tokens"),
    errorCode: text("error_code"),
    errorMessage: text("error_message"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
    completedAt: timestamp("completed_at", { withTimezone: true, mode: "date" }),
  },
  (table) => [
    index("messages_conversation_idx").on(table.conversationId, table.createdAt, table.id),
    // A message's versions (its siblings, oldest first) and the tree walks down from a message;
    // also what the parent_id foreign key's cascade looks up.
    index("messages_parent_idx").on(table.parentId, table.createdAt, table.id),
    // The versions of a conversation's first message (they have no parent).
    index("messages_roots_idx").on(table.conversationId, table.createdAt, table.id).where(sql`${table.parentId} is null`),
    // Search (GET /api/conversations/search): full-text over message text with the 'simple'
    // configuration (no stemming, any language); the query must use this exact expression.
    index("messages_content_search_idx").using("gin", sql`to_tsvector('simple', ${table.content})`),
    // Per-user usage totals (GET /api/me) read only this user's rows.
    index("messages_user_idx").on(table.userId),
    // At most one reply generating per conversation: the 409 GENERATION_IN_PROGRESS rule, race-free.
    uniqueIndex("messages_one_active_per_conversation")
      .on(table.conversationId)
      .where(sql`${table.status} in ('pending', 'streaming')`),
    // The sweeper's and the per-user limit's lookups touch only unfinished generations.
    index("messages_active_idx").on(table.userId, table.updatedAt).where(sql`${table.status} in ('pending', 'streaming')`),
    check("messages_status_check", sql`${table.status} in ('pending', 'streaming', 'completed', 'cancelled', 'failed')`),
    check("messages_role_check", sql`${table.role} in ('user', 'assistant')`),
  ],
);

/** Replays of POST /messages with the same Idempotency-Key return the stored response (README: idempotency policy). */
export const idempotencyKeys = pgTable(
  "idempotency_keys",
  {
    userId: uuid("user_id").notNull().references(() => users.id, { onDelete: "cascade" }),
    key: text("key").notNull(),
    /** Set with the stored response; the key (and the message text in it) goes with its conversation. */
    conversationId: uuid("conversation_id").references(() => conversations.id, { onDelete: "cascade" }),
    /** SHA-256 of the route and body, so a reused key with another request is refused. */
    requestHash: text("request_hash").notNull(),
    response: jsonb("response").notNull(),
    createdAt: createdAt(),
  },
  // Keys expire after IDEMPOTENCY_KEY_TTL_HOURS: the purge finds them by created_at.
  (table) => [
    primaryKey({ columns: [table.userId, table.key] }),
    index("idempotency_keys_created_idx").on(table.createdAt),
    index("idempotency_keys_conversation_idx").on(table.conversationId),
  ],
);

/**
 * API keys for the OpenAI-compatible `/v1` routes (README "Use Sluice from the OpenAI SDK"): only the
 * SHA-256 of a key is stored, like a session token's; `prefix` is the key's first characters, shown
 * in listings so a user can tell keys apart. Revoking deletes the row.
 */
export const apiKeys = pgTable(
  "api_keys",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    userId: uuid("user_id").notNull().references(() => users.id, { onDelete: "cascade" }),
    name: text("name"),
    keyHash: text("key_hash").notNull().unique(),
    prefix: text("prefix").notNull(),
    createdAt: createdAt(),
    lastUsedAt: timestamp("last_used_at", { withTimezone: true, mode: "date" }),
  },
  (table) => [index("api_keys_user_idx").on(table.userId, table.createdAt)],
);

/**
 * `/v1/chat/completions` calls made with `store: true`: their task can be fetched again with
 * `GET /v1/chat/completions/{id}`. The text itself is the assistant message of the call's
 * conversation; the row goes with the conversation.
 */
export const storedCompletions = pgTable(
  "stored_completions",
  {
    taskId: text("task_id").primaryKey(),
    userId: uuid("user_id").notNull().references(() => users.id, { onDelete: "cascade" }),
    conversationId: uuid("conversation_id").notNull().references(() => conversations.id, { onDelete: "cascade" }),
    createdAt: createdAt(),
  },
  (table) => [index("stored_completions_conversation_idx").on(table.conversationId)],
);
