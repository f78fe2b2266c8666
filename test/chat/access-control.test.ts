import { randomUUID } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { readSse } from "../support/client/read-sse.ts";
import { call, expectErrorShape, registerUser, waitForFinalReply, type AcceptedJson, type ChatUser } from "../support/client/chat-api.ts";
import { useSluice } from "../support/sluice/use-sluice.ts";

let alice: ChatUser;
let bob: ChatUser;
let aliceConversation: string;
let aliceReply: AcceptedJson;
let bobReply: AcceptedJson;

const sluice = useSluice({ label: "access" });
beforeAll(async () => {
  alice = await registerUser(sluice.url, "alice");
  bob = await registerUser(sluice.url, "bob");
  aliceConversation = (await alice.createConversation("Alice's secrets")).id;
  aliceReply = await alice.send(aliceConversation, "echo:for alice only");
  await waitForFinalReply(alice, aliceConversation, aliceReply.taskId);
  const bobConversation = (await bob.createConversation()).id;
  bobReply = await bob.send(bobConversation, "echo:bob's");
  await waitForFinalReply(bob, bobConversation, bobReply.taskId);
});

/** Another user's resource must be indistinguishable from one that does not exist. */
async function expectSameAsMissing(method: string, path: (id: string) => string, realId: string, missingId: string, body?: unknown): Promise<void> {
  const options = body === undefined ? {} : { body };
  const foreign = await bob.call(method, path(realId), options);
  const missing = await bob.call(method, path(missingId), options);
  expect(foreign.status, `${method} ${path(realId)}: ${foreign.text}`).toBe(404);
  expectErrorShape(foreign);
  expect(foreign.body).toEqual(missing.body);
  expect(missing.status).toBe(404);
}

describe("another user's conversations and streams", () => {
  it("are 404 with the same body as a random id on every route, and stay untouched", async () => {
    const conversationPath = (id: string) => `/api/conversations/${id}`;
    const missing = randomUUID();
    await expectSameAsMissing("GET", conversationPath, aliceConversation, missing);
    await expectSameAsMissing("PATCH", conversationPath, aliceConversation, missing, { title: "mine now" });
    await expectSameAsMissing("DELETE", conversationPath, aliceConversation, missing);
    await expectSameAsMissing("POST", (id) => `/api/conversations/${id}/messages`, aliceConversation, missing, { content: "hello" });
    await expectSameAsMissing("POST", (id) => `/api/conversations/${id}/regenerate`, aliceConversation, missing, {});
    await expectSameAsMissing("POST", (id) => `/api/stream/${id}/cancel`, aliceReply.taskId, "no-such-task");

    const foreignStream = await bob.stream(aliceReply.taskId);
    const missingStream = await bob.stream("no-such-task");
    expect(foreignStream.status).toBe(404);
    expect(foreignStream.body).toBe(missingStream.body);
    expect(JSON.parse(foreignStream.body)).toMatchObject({ error: { code: "STREAM_NOT_FOUND" } });

    // Nothing Bob did changed Alice's conversation.
    const intact = await alice.conversation(aliceConversation);
    expect(intact.title).toBe("Alice's secrets");
    expect(intact.messages.map((message) => message.content)).toEqual(["echo:for alice only", "for alice only"]);
  });

  it("a read token only opens the task it was issued for", async () => {
    const token = new URL(aliceReply.streamUrl, sluice.url).searchParams.get("token") ?? "";
    expect(token.length).toBeGreaterThan(10);
    const own = await readSse(`${sluice.url}/api/stream/${aliceReply.taskId}?token=${encodeURIComponent(token)}`);
    expect(own.status).toBe(200);
    for (const taskId of [bobReply.taskId, "no-such-task"]) {
      const elsewhere = await readSse(`${sluice.url}/api/stream/${taskId}?token=${encodeURIComponent(token)}`);
      expect(elsewhere.status, elsewhere.body).toBe(401);
      expect(JSON.parse(elsewhere.body)).toMatchObject({ error: { code: "UNAUTHENTICATED" } });
    }
    // A read token is not a session token.
    const asBearer = await call(sluice.url, "GET", `/api/conversations/${aliceConversation}`, { token });
    expect(asBearer.status).toBe(401);
    const tampered = await readSse(`${sluice.url}/api/stream/${aliceReply.taskId}?token=${encodeURIComponent(`${token.slice(0, -2)}xx`)}`);
    expect(tampered.status).toBe(401);
  });
});

describe("requests without a valid bearer token", () => {
  const publicRoutes = new Set(["POST /api/auth/register", "POST /api/auth/login", "POST /api/auth/logout"]);

  it("get 401 UNAUTHENTICATED on every protected route in the OpenAPI document", async () => {
    const document = (await (await fetch(`${sluice.url}/api/docs/json`)).json()) as { paths: Record<string, Record<string, unknown>> };
    const routes = Object.entries(document.paths).flatMap(([path, methods]) => Object.keys(methods).map((method) => ({ method: method.toUpperCase(), path })));
    const protectedRoutes = routes.filter((route) => !publicRoutes.has(`${route.method} ${route.path}`));
    expect(protectedRoutes.length).toBeGreaterThanOrEqual(10);
    const fill = (path: string): string => path.replace("{id}", aliceConversation).replace("{taskId}", aliceReply.taskId);
    const badAuthorizations: Array<Record<string, string>> = [
      {},
      { authorization: "" },
      { authorization: `Basic ${Buffer.from("a:b").toString("base64")}` },
      { authorization: "Bearer" },
      { authorization: "Bearer not a token" },
      { authorization: `Bearer ${"x".repeat(600)}` },
      { authorization: "Bearer AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" },
      { authorization: `bearer ${alice.token}x` },
      { authorization: `Bearer ${alice.token.slice(0, -1)}` },
    ];
    for (const route of protectedRoutes) {
      for (const headers of badAuthorizations) {
        const body = route.method === "GET" || route.method === "DELETE" ? undefined : { content: "hi", title: "t" };
        const answer = await call(sluice.url, route.method, fill(route.path), { headers, ...(body === undefined ? {} : { body }) });
        expect(answer.status, `${route.method} ${route.path} ${JSON.stringify(headers).slice(0, 80)}: ${answer.text}`).toBe(401);
        // /v1 answers in OpenAI's error shape (README "Use Sluice from the OpenAI SDK"; test/openai).
        if (route.path.startsWith("/v1/")) expect((answer.body as { error?: { code?: unknown } }).error?.code, answer.text).toBe("invalid_api_key");
        else expectErrorShape(answer, "UNAUTHENTICATED");
      }
    }
    // A logged-out session token is invalid everywhere too.
    const carol = await registerUser(sluice.url, "carol");
    expect((await carol.call("POST", "/api/auth/logout")).status).toBe(204);
    const afterLogout = await carol.call("GET", "/api/me");
    expect(afterLogout.status).toBe(401);
    expectErrorShape(afterLogout, "UNAUTHENTICATED");
  });
});
