/**
 * Long conversations (issue 16) on real PostgreSQL and Redis, through the real OpenAI SDK against
 * the fake server (which records every request): a conversation of 1,000 turns still gets a reply,
 * and the request holds the system prompt and only the newest turns within the model's context
 * budget; the metrics count what was left out. A message too long for the budget even alone fails
 * with CONTEXT_TOO_LONG without calling the model, and the conversation goes on.
 */
import { randomUUID } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeOpenAiServer } from "../support/providers/fake-openai-server.ts";
import type { FakeProviderServer } from "../support/providers/fake-provider-script.ts";
import { textOf } from "../support/client/read-sse.ts";
import { expectOneEndLast, registerUser, waitForFinalReply, type ChatUser } from "../support/client/chat-api.ts";
import { startSluice, type InProcessSluice } from "../support/sluice/start-sluice.ts";

/** README "Long conversations": UTF-8 bytes / 3, rounded up, plus 4 per message. */
const estimatedTokens = (text: string): number => Math.ceil(Buffer.byteLength(text) / 3) + 4;
/** CONTEXT_BUDGET_BY_MODEL's 6000 less CONTEXT_REPLY_TOKENS' 1024. */
const promptBudget = 6000 - 1024;
const systemPrompt = "You are terse.";

type SentTurn = { role: string; content: string };
const sentMessages = (provider: FakeProviderServer): SentTurn[] => (provider.requests.at(-1)?.body as { messages: SentTurn[] }).messages;

async function metric(baseUrl: string, name: string): Promise<number> {
  const body = await (await fetch(`${baseUrl}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\S+)$`, "m").exec(body)?.[1] ?? Number.NaN);
}

/**
 * Writes `turns` into the conversation as final messages, oldest first, each under the one before
 * (the tree's parent links) and dated before now, and makes the last the conversation's active leaf,
 * so the next message is appended after them. One statement: a thousand turns through the API would
 * take a thousand generations.
 */
async function seedTurns(databaseUrl: string, conversationId: string, turns: readonly SentTurn[]): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ user_id: string }>("select user_id from conversations where id = $1", [conversationId]);
    const userId = rows[0]?.user_id;
    const ids = turns.map(() => randomUUID());
    const values: unknown[] = [];
    const tuples = turns.map((turn, index) => {
      values.push(ids[index], conversationId, userId, index === 0 ? null : ids[index - 1], turn.role, turn.content, turns.length - index);
      const at = values.length - 7;
      return `($${at + 1}::uuid, $${at + 2}::uuid, $${at + 3}::uuid, $${at + 4}::uuid, $${at + 5}, $${at + 6}, 'completed', now() - make_interval(secs => $${at + 7}::int))`;
    });
    await client.query(`insert into messages (id, conversation_id, user_id, parent_id, role, content, status, created_at) values ${tuples.join(", ")}`, values);
    await client.query("update conversations set active_leaf_id = $2 where id = $1", [conversationId, ids.at(-1)]);
  } finally {
    await client.end();
  }
}

describe("a long conversation", () => {
  let provider: FakeProviderServer;
  let sluice: InProcessSluice;
  let user: ChatUser;
  beforeAll(async () => {
    provider = await startFakeOpenAiServer({ tokenCount: 12 });
    sluice = await startSluice({ label: "long-conversation", env: {
      LLM_PROVIDER: "openai",
      OPENAI_BASE_URL: provider.url,
      OPENAI_API_KEY: "sk-fake",
      LLM_MODEL: "gpt-fake",
      CONTEXT_BUDGET_BY_MODEL: "gpt-fake=6000",
      CONTEXT_REPLY_TOKENS: "1024",
    } });
    user = await registerUser(sluice.url, "long-conversation");
    const settings = await user.call("PATCH", "/api/me/settings", { body: { systemPrompt } });
    expect(settings.status, settings.text).toBe(200);
  });
  afterAll(async () => {
    await sluice?.stop();
    await provider?.close();
  });

  it("of 1,000 turns gets a reply, asked with the system prompt and only the newest turns within the budget; the metrics count what was left out", async () => {
    // 120 bytes each: 44 estimated tokens a turn.
    const seeded: SentTurn[] = Array.from({ length: 1_000 }, (_, index) => {
      const role = index % 2 === 0 ? "user" : "assistant";
      return { role, content: `${role} turn ${String(index).padStart(4, "0")} `.padEnd(120, "-") };
    });
    expect(seeded.every((turn) => estimatedTokens(turn.content) === 44)).toBe(true);
    const conversation = await user.createConversation();
    await seedTurns(sluice.env.DATABASE_URL ?? "", conversation.id, seeded);
    const turnsLeftOutBefore = await metric(sluice.url, "sluice_context_turns_left_out_total");
    const trimmedBefore = await metric(sluice.url, "sluice_context_trimmed_total");

    const question = "What did we say last?";
    const accepted = await user.send(conversation.id, question);
    const stream = await user.stream(accepted.taskId);
    expect(expectOneEndLast(stream)).toMatchObject({ status: "completed" });
    expect(textOf(stream.events)).toBe(provider.expectedText());

    // 4976 tokens: the system prompt (9) and the question (11) leave 4956, room for 112 turns of 44;
    // the 112th from the end (index 888) is a user turn, so nothing is dropped as an orphan reply.
    const keptFrom = 888;
    const sent = sentMessages(provider);
    expect(sent).toEqual([{ role: "system", content: systemPrompt }, ...seeded.slice(keptFrom), { role: "user", content: question }]);
    const sentTokens = sent.reduce((total, turn) => total + estimatedTokens(turn.content), 0);
    expect(sentTokens).toBeLessThanOrEqual(promptBudget);
    // One more turn (and its question, to not begin with a reply) would not fit: only the oldest went.
    expect(sentTokens + 2 * 44).toBeGreaterThan(promptBudget);

    // Every turn not sent is counted. (A history load capped at context-budget.ts historyLoadLimit
    // must report the earlier turns it did not read, or this count falls short.)
    expect(await metric(sluice.url, "sluice_context_turns_left_out_total")).toBe(turnsLeftOutBefore + keptFrom);
    expect(await metric(sluice.url, "sluice_context_trimmed_total")).toBe(trimmedBefore + 1);
    // The conversation keeps every message: only the prompt is shorter.
    expect((await waitForFinalReply(user, conversation.id, accepted.taskId)).content).toBe(provider.expectedText());
  });

  it("fails a message too long for the model's budget with CONTEXT_TOO_LONG, without calling the model, and the conversation goes on", async () => {
    const conversation = await user.createConversation();
    const requestsBefore = provider.requests.length;
    // 15,000 bytes: 5004 tokens, with the system prompt's 9 over the 4976 the budget leaves.
    const accepted = await user.send(conversation.id, "x".repeat(15_000));
    const end = expectOneEndLast(await user.stream(accepted.taskId));
    expect(end).toMatchObject({ status: "failed", error: { code: "CONTEXT_TOO_LONG" } });
    expect(end.error?.message).toMatch(/5013 tokens.*4976/);
    expect(provider.requests.length).toBe(requestsBefore);
    expect(await waitForFinalReply(user, conversation.id, accepted.taskId)).toMatchObject({ status: "failed", error: { code: "CONTEXT_TOO_LONG" } });

    // Shortened, it is answered; the refused message is still in the history but left out of the prompt.
    const shorter = await user.send(conversation.id, "In short: x.");
    expect(expectOneEndLast(await user.stream(shorter.taskId))).toMatchObject({ status: "completed" });
    expect(sentMessages(provider)).toEqual([{ role: "system", content: systemPrompt }, { role: "user", content: "In short: x." }]);
  });
});
