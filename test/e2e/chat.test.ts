// The chat UI in a real chromium against the real Sluice (simulated model):
// sign-in, streaming, stop, regenerate, titles and URLs, untrusted model output.
import { describe, expect, test, vi } from "vitest";

// A browser, a whole server and replies several seconds long: more than the unit-test default.
vi.setConfig({ testTimeout: 90_000 });
import { saveScreenshot } from "../support/browser/launch-browser.ts";
import { useBrowserSession } from "../support/browser/browser-session.ts";
import { testPassword } from "../support/client/chat-api.ts";
import {
  assistantText,
  conversationIdFromUrl,
  fetchSavedConversation,
  lastAssistant,
  normalizeWhitespace,
  recordGenerationRequests,
  register,
  savedLastAssistant,
  sendMessage,
  uniqueEmail,
  waitForStatus,
  waitForStreamedText,
} from "../support/browser/chat-page.ts";

// 25 tokens/s × 150 tokens ≈ 6 s per reply: long enough to act mid-stream on a loaded machine.
const session = useBrowserSession({ tokensPerSecond: 25, tokenCount: 150 });

describe("signing in", () => {
  test("register, stay signed in across a reload, and see plain-word errors", async () => {
    const page = await session.freshPage();
    await page.getByTestId("auth-email").waitFor();
    await saveScreenshot(page, "sign-in");

    const email = uniqueEmail("register");
    await register(page, session.url, email);
    await page.reload();
    await page.getByTestId("composer-input").waitFor();
    expect(await page.getByTestId("auth-email").count()).toBe(0);

    // Wrong password: the user reads why, with the code.
    await page.evaluate(() => localStorage.clear());
    await page.reload();
    await page.getByTestId("auth-email").fill(email);
    await page.getByTestId("auth-password").fill(`${testPassword}-wrong`);
    await page.getByTestId("auth-submit").click();
    const alert = page.getByRole("alert");
    await alert.waitFor();
    expect(await alert.textContent()).toContain("INVALID_CREDENTIALS");

    // Registering the same email again says the account exists.
    await page.getByTestId("auth-switch").click();
    await page.getByTestId("auth-submit").click();
    await page.waitForFunction(() => document.querySelector('[role="alert"]')?.textContent?.includes("EMAIL_TAKEN") === true);
    await page.close();
  });
});

describe("chatting", () => {
  test("a reply streams token by token, completes, and settles to the saved message", async () => {
    const page = await session.freshPage();
    await register(page, session.url, uniqueEmail("stream"));
    const generationRequests = recordGenerationRequests(page);
    await sendMessage(page, "Tell me about durable streams");

    await page.getByTestId("message-user").filter({ hasText: "Tell me about durable streams" }).waitFor();
    const early = await waitForStreamedText(page, 1);
    // The text must grow while the message is still streaming.
    await waitForStreamedText(page, early.trim().length + 10);
    await saveScreenshot(page, "streaming");
    await waitForStatus(page, "completed");
    await saveScreenshot(page, "completed");

    const saved = await savedLastAssistant(page, session.url);
    expect(saved.status).toBe("completed");
    expect(normalizeWhitespace(await assistantText(page))).toBe(normalizeWhitespace(saved.content));
    // The whole reply came in the POST's own answer, passed on from the new-chat page to the
    // conversation's: no second request for the stream (PROTOCOL.md 2.4).
    expect(generationRequests.map((request) => [request.method, request.path.split("/").at(-1), request.contentType])).toEqual([["POST", "messages", "text/event-stream"]]);

    // Each conversation has its own URL and its title from the first message, listed in the sidebar.
    const conversationId = conversationIdFromUrl(page);
    const conversation = await fetchSavedConversation(page, session.url, conversationId);
    expect(conversation.title).toBeTruthy();
    await page.getByTestId("conversation-list").getByText(conversation.title ?? "", { exact: false }).first().waitFor();
    await page.reload();
    await waitForStatus(page, "completed");
    expect(normalizeWhitespace(await assistantText(page))).toBe(normalizeWhitespace(saved.content));
    await page.close();
  });

  test("Stop cancels through the API and keeps the partial text, marked as stopped", async () => {
    const page = await session.freshPage();
    await register(page, session.url, uniqueEmail("stop"));
    await sendMessage(page, "Write something long");
    await waitForStreamedText(page, 5);
    await page.getByTestId("composer-stop").click();
    await waitForStatus(page, "cancelled");
    await lastAssistant(page).getByText("Stopped").waitFor();
    await saveScreenshot(page, "stopped");

    const shown = normalizeWhitespace(await assistantText(page));
    expect(shown.length).toBeGreaterThan(0);
    // Settles to the saved partial reply (the worker may have written a few more tokens before it saw the cancel).
    await page.waitForFunction(() => document.querySelector('[data-testid="composer-send"]') !== null);
    const saved = await savedLastAssistant(page, session.url);
    expect(saved.status).toBe("cancelled");
    await page.waitForFunction(
      (expected) => {
        const messages = document.querySelectorAll('[data-testid="message-assistant"] .markdown');
        return (messages[messages.length - 1]?.textContent ?? "").replace(/\s+/g, " ").trim() === expected;
      },
      normalizeWhitespace(saved.content),
    );
    await page.close();
  });

  test("Regenerate shows a new streamed answer in place of the last one, which stays as its other version", async () => {
    const page = await session.freshPage();
    await register(page, session.url, uniqueEmail("regen"));
    await sendMessage(page, "echo:first answer");
    await waitForStatus(page, "completed");
    const firstId = await page.getByTestId("message-assistant").getAttribute("data-message-id");
    const generationRequests = recordGenerationRequests(page);
    await page.getByRole("button", { name: "Regenerate" }).click();
    await page.waitForFunction(() => {
      const status = document.querySelector('[data-testid="message-assistant"]')?.getAttribute("data-status");
      return status === "pending" || status === "streaming";
    });
    await waitForStatus(page, "completed");
    expect(await page.getByTestId("message-assistant").count()).toBe(1);
    const saved = await savedLastAssistant(page, session.url);
    expect(normalizeWhitespace(await assistantText(page))).toBe(normalizeWhitespace(saved.content));
    expect(saved.id).not.toBe(firstId);
    await page.getByTestId("version-label").filter({ hasText: "2 / 2" }).waitFor();
    expect(generationRequests.map((request) => [request.method, request.path.split("/").at(-1), request.contentType])).toEqual([["POST", "regenerate", "text/event-stream"]]);
    await page.close();
  });

  test("HTML in a model reply is shown as text and never runs", async () => {
    const page = await session.freshPage();
    await register(page, session.url, uniqueEmail("xss"));
    const payload = `<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>`;
    await sendMessage(page, `echo: ${payload} [link](javascript:window.__xss=3)`);
    await waitForStatus(page, "completed");

    const reply = lastAssistant(page);
    expect(await reply.locator("img, script").count()).toBe(0);
    expect(await reply.locator('a[href^="javascript:"]').count()).toBe(0);
    expect(normalizeWhitespace(await assistantText(page))).toContain(payload);
    // Clicking the would-be link must not run it either.
    await reply.getByText("[link]", { exact: false }).click();
    expect(await page.evaluate(() => (window as { __xss?: unknown }).__xss)).toBeUndefined();
    await page.close();
  });

  test("replies render as markdown: code blocks, lists, safe links (dark theme)", async () => {
    const page = await session.freshPage();
    await page.emulateMedia({ colorScheme: "dark" });
    await register(page, session.url, uniqueEmail("markdown"));
    const reply = ["## Plan", "", "- first *step*", "- second step", "", "```ts", "const answer: number = 42;", "```", "", "See https://example.com/docs"].join("\n");
    await sendMessage(page, `echo:${reply}`);
    await waitForStatus(page, "completed");
    const message = lastAssistant(page);
    expect(await message.locator("h2").textContent()).toBe("Plan");
    expect(await message.locator("li").count()).toBe(2);
    expect(await message.locator("pre code.language-ts").textContent()).toBe("const answer: number = 42;\n");
    expect(await message.locator("a").getAttribute("rel")).toBe("noopener noreferrer");
    await saveScreenshot(page, "markdown-dark");
    await page.close();
  });

  test("works at phone width", async () => {
    const page = await session.freshPage();
    await page.setViewportSize({ width: 390, height: 844 });
    await page.getByTestId("auth-email").waitFor();
    await saveScreenshot(page, "phone-sign-in");
    await register(page, session.url, uniqueEmail("phone"));
    await sendMessage(page, "Hello from a phone");
    await waitForStreamedText(page, 20);
    await saveScreenshot(page, "phone-streaming");
    await waitForStatus(page, "completed");
    // The composer stays inside the viewport.
    const box = await page.getByTestId("composer-input").boundingBox();
    expect(box).not.toBeNull();
    expect((box?.y ?? 0) + (box?.height ?? 0)).toBeLessThanOrEqual(844);
    await page.getByRole("button", { name: "Open conversations" }).click();
    await page.getByTestId("conversation-list").waitFor();
    await page.waitForFunction(() => {
      const sidebar = document.querySelector(".sidebar");
      return sidebar !== null && getComputedStyle(sidebar).transform === "none";
    });
    await saveScreenshot(page, "phone-sidebar");
    await page.close();
  });
});
