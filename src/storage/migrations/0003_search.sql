CREATE INDEX "messages_content_search_idx" ON "messages" USING gin (to_tsvector('simple', "content"));--> statement-breakpoint
CREATE INDEX "messages_user_idx" ON "messages" USING btree ("user_id");