ALTER TABLE "idempotency_keys" ADD COLUMN "conversation_id" uuid;--> statement-breakpoint
ALTER TABLE "sessions" ADD COLUMN "last_used_at" timestamp with time zone DEFAULT now() NOT NULL;--> statement-breakpoint
ALTER TABLE "idempotency_keys" ADD CONSTRAINT "idempotency_keys_conversation_id_conversations_id_fk" FOREIGN KEY ("conversation_id") REFERENCES "public"."conversations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "idempotency_keys_created_idx" ON "idempotency_keys" USING btree ("created_at");--> statement-breakpoint
CREATE INDEX "idempotency_keys_conversation_idx" ON "idempotency_keys" USING btree ("conversation_id");--> statement-breakpoint
CREATE INDEX "sessions_expires_idx" ON "sessions" USING btree ("expires_at");--> statement-breakpoint
CREATE INDEX "sessions_last_used_idx" ON "sessions" USING btree ("last_used_at");--> statement-breakpoint
-- Keys stored before this migration: attach each to its conversation through its task id; a key whose
-- message is gone belonged to a deleted conversation and goes now.
UPDATE "idempotency_keys" AS k SET "conversation_id" = m."conversation_id" FROM "messages" AS m WHERE m."task_id" = k."response"->>'taskId';--> statement-breakpoint
DELETE FROM "idempotency_keys" WHERE "conversation_id" IS NULL;--> statement-breakpoint
-- The per-user limit on concurrent generations (src/storage/accept-turn.ts). Called inside the one
-- statement that accepts a turn: it takes a per-user transaction lock, then counts with a fresh
-- snapshot (a VOLATILE function's queries see what committed after the calling statement began), so
-- a parallel request for the same user waits for the first to commit and then counts its reply.
-- plpgsql, so the planner never inlines it into the caller's snapshot. 1936487789 is an arbitrary
-- namespace for Sluice's advisory locks.
CREATE FUNCTION "sluice_lock_active_generations"("target_user" uuid) RETURNS integer
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  PERFORM pg_advisory_xact_lock(1936487789, hashtext(target_user::text));
  RETURN (SELECT count(*) FROM "messages" WHERE "user_id" = target_user AND "status" IN ('pending', 'streaming'));
END
$$;
