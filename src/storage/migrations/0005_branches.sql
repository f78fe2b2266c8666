ALTER TABLE "conversations" ADD COLUMN "active_leaf_id" uuid;--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "parent_id" uuid;--> statement-breakpoint
ALTER TABLE "messages" ADD CONSTRAINT "messages_parent_id_messages_id_fk" FOREIGN KEY ("parent_id") REFERENCES "public"."messages"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "messages_parent_idx" ON "messages" USING btree ("parent_id","created_at","id");--> statement-breakpoint
CREATE INDEX "messages_roots_idx" ON "messages" USING btree ("conversation_id","created_at","id") WHERE "messages"."parent_id" is null;--> statement-breakpoint
-- Conversations before branches were one line: each message follows the one before it (by time,
-- as they were listed), and the newest is the active leaf. A question and its reply were inserted
-- by one statement and can share a timestamp (PGlite's clock has millisecond steps): the question first.
UPDATE "messages" AS m SET "parent_id" = ordered."previous_id"
FROM (
  SELECT "id", lag("id") OVER (PARTITION BY "conversation_id" ORDER BY "created_at", "role" <> 'user', "id") AS "previous_id" FROM "messages"
) AS ordered
WHERE ordered."id" = m."id" AND ordered."previous_id" IS NOT NULL;--> statement-breakpoint
UPDATE "conversations" AS c SET "active_leaf_id" = (
  SELECT m."id" FROM "messages" AS m WHERE m."conversation_id" = c."id" ORDER BY m."created_at" DESC, m."role" <> 'user' DESC, m."id" DESC LIMIT 1
);
