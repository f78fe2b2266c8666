import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { registerUser, type AcceptedJson } from "../support/client/chat-api.ts";
import { startSluice, type InProcessSluice } from "../support/sluice/start-sluice.ts";

// The per-user limit on concurrent generations (LIMIT_GENERATIONS_PER_USER) against parallel
// POSTs to different conversations: each request used to count `active < limit` at READ
// COMMITTED, so requests that overlapped all saw the same count and all passed.
const limit = 3;
const parallel = 30;
// Before the fix one burst got through in about two runs of three; four bursts (four users) make a
// pass by luck unlikely (~1 %).
const rounds = 4;

let sluice: InProcessSluice;
beforeAll(async () => {
  // API only: accepted replies stay `pending`, so every accepted one keeps counting against the limit.
  // A pool as large as the burst, so the 30 statements really run at the same time.
  sluice = await startSluice({ label: "genlimit", topology: { apis: 1, workers: 0 }, env: { LIMIT_GENERATIONS_PER_USER: String(limit), DB_POOL_SIZE: String(parallel) } });
});
afterAll(async () => {
  await sluice.stop();
});

describe("LIMIT_GENERATIONS_PER_USER under parallel requests", () => {
  it.each(Array.from({ length: rounds }, (_, round) => round + 1))(`accepts exactly ${limit} of ${parallel} parallel POSTs to ${parallel} conversations (user %i)`, async (round) => {
    const user = await registerUser(sluice.url, `racer${round}`);
    const conversations = await Promise.all(Array.from({ length: parallel }, (_, index) => user.createConversation(`c${index}`)));
    const answers = await Promise.all(
      conversations.map((conversation) => user.call<AcceptedJson>("POST", `/api/conversations/${conversation.id}/messages`, { body: { content: "hello" } })),
    );
    const statuses = answers.map((answer) => answer.status);
    expect(statuses.filter((status) => status === 202)).toHaveLength(limit);
    expect(statuses.filter((status) => status === 429)).toHaveLength(parallel - limit);
    for (const refused of answers.filter((answer) => answer.status === 429)) {
      expect(refused.body).toMatchObject({ error: { code: "TOO_MANY_GENERATIONS" } });
    }
    // What was refused stored nothing: exactly `limit` conversations hold a message.
    const stored = await Promise.all(conversations.map((conversation) => user.conversation(conversation.id)));
    expect(stored.filter((conversation) => conversation.messages.length > 0)).toHaveLength(limit);
  });
});
