// Branches and long conversations in a real chromium against the real Sluice (simulated model):
// editing a question and regenerating a reply add versions ("‹ 2 / 3 ›") that the reader switches
// between, kept across a reload; a long conversation opens at its newest page and loads older
// messages when scrolled to the top, keeping the reader's place.
import { describe, expect, test, vi } from "vitest";

vi.setConfig({ testTimeout: 120_000 });
import type { Page } from "playwright-core";
import { saveScreenshot } from "../support/browser/launch-browser.ts";
import { conversationIdFromUrl, fetchSavedConversation, waitForStatus, echoTurn } from "../support/browser/chat-page.ts";
import { useBrowserSession } from "../support/browser/browser-session.ts";

const session = useBrowserSession({ tokensPerSecond: 400, tokenCount: 40 });

/** The shown conversation, message by message: the text of user bubbles and replies. */
async function shownTexts(page: Page): Promise<string[]> {
  return page.$$eval(".message-list > article", (articles) =>
    articles.map((article) => (article.querySelector(".message-bubble, .markdown")?.textContent ?? "").trim()),
  );
}

async function waitForShown(page: Page, expected: string[]): Promise<void> {
  await page.waitForFunction(
    (texts) => {
      const shown = [...document.querySelectorAll(".message-list > article")].map((article) => (article.querySelector(".message-bubble, .markdown")?.textContent ?? "").trim());
      return JSON.stringify(shown) === JSON.stringify(texts);
    },
    expected,
    { timeout: 30_000 },
  ).catch(async (error: unknown) => {
    throw new Error(`shown ${JSON.stringify(await shownTexts(page))}, expected ${JSON.stringify(expected)}: ${String(error)}`);
  });
}

describe("branches", () => {
  test("edit a question and regenerate a reply: versions switch with ‹ ›, nothing is lost, and the choice survives a reload", async () => {
    const page = await session.signedInPage("branches");
    await echoTurn(page, "alpha");
    await echoTurn(page, "beta");
    await waitForShown(page, ["echo:alpha", "alpha", "echo:beta", "beta"]);

    // Edit the first question: a new version with its own reply replaces the branch shown.
    const firstQuestion = page.getByTestId("message-user").first();
    await firstQuestion.hover();
    await firstQuestion.getByTestId("message-edit").click();
    const editor = page.getByTestId("message-edit-input");
    await editor.fill("echo:gamma");
    await saveScreenshot(page, "branches-editing");
    await page.getByTestId("message-edit-save").click();
    await waitForShown(page, ["echo:gamma", "gamma"]);
    await waitForStatus(page, "completed");
    const versions = page.getByTestId("message-user").first().getByTestId("version-label");
    await versions.filter({ hasText: "2 / 2" }).waitFor();
    await saveScreenshot(page, "branches-edited");

    // ‹ shows the first version and its whole branch again.
    await page.getByTestId("message-user").first().getByTestId("version-previous").click();
    await waitForShown(page, ["echo:alpha", "alpha", "echo:beta", "beta"]);
    await versions.filter({ hasText: "1 / 2" }).waitFor();

    // Regenerate the last reply: a second version beside the first, which stays.
    const oldReplyId = await page.getByTestId("message-assistant").last().getAttribute("data-message-id");
    await page.getByRole("button", { name: "Regenerate" }).click();
    await page.waitForFunction((id) => document.querySelectorAll('[data-testid="message-assistant"]')[1]?.getAttribute("data-message-id") !== id, oldReplyId);
    await waitForStatus(page, "completed");
    const replyVersions = page.getByTestId("message-assistant").last().getByTestId("version-label");
    await replyVersions.filter({ hasText: "2 / 2" }).waitFor();
    const newReplyId = await page.getByTestId("message-assistant").last().getAttribute("data-message-id");
    await page.getByTestId("message-assistant").last().getByTestId("version-previous").click();
    await page.waitForFunction((id) => document.querySelectorAll('[data-testid="message-assistant"]')[1]?.getAttribute("data-message-id") === id, oldReplyId);
    await replyVersions.filter({ hasText: "1 / 2" }).waitFor();
    await saveScreenshot(page, "branches-versions");

    // The server keeps the choice: a reload shows the same branch, and every version is still there.
    await page.reload();
    await waitForShown(page, ["echo:alpha", "alpha", "echo:beta", "beta"]);
    expect(await page.getByTestId("message-assistant").last().getAttribute("data-message-id")).toBe(oldReplyId);
    await page.getByTestId("message-assistant").last().getByTestId("version-next").click();
    await page.waitForFunction((id) => document.querySelectorAll('[data-testid="message-assistant"]')[1]?.getAttribute("data-message-id") === id, newReplyId);
    await page.getByTestId("message-user").first().getByTestId("version-next").click();
    await waitForShown(page, ["echo:gamma", "gamma"]);
    await page.close();
  });
});

describe("long conversations", () => {
  test("open at the newest page and load older messages on scrolling to the top, keeping the reader's place", async () => {
    const page = await session.signedInPage("long");
    await echoTurn(page, "m1");
    const conversationId = conversationIdFromUrl(page);
    // 29 more turns through the API (the same user's token): 60 messages, more than a page (50).
    await page.evaluate(async (id) => {
      const token = (JSON.parse(localStorage.getItem("sluice.session") ?? "{}") as { token?: string }).token ?? "";
      const headers = { authorization: `Bearer ${token}`, "content-type": "application/json" };
      for (let index = 2; index <= 30; index += 1) {
        const sent = await fetch(`/api/conversations/${id}/messages`, { method: "POST", headers, body: JSON.stringify({ content: `echo:m${index}` }) });
        if (sent.status !== 202) throw new Error(`send ${index}: ${sent.status}`);
        for (;;) {
          const conversation = (await (await fetch(`/api/conversations/${id}?limit=1`, { headers })).json()) as { activeGeneration: unknown };
          if (conversation.activeGeneration === null) break;
          await new Promise((resolve) => setTimeout(resolve, 25));
        }
      }
    }, conversationId);
    expect((await fetchSavedConversation(page, session.url, conversationId)).messages).toHaveLength(50);

    await page.reload();
    const expectedNewest = Array.from({ length: 25 }, (_, index) => [`echo:m${index + 6}`, `m${index + 6}`]).flat();
    await waitForShown(page, expectedNewest);
    await page.getByTestId("load-older").waitFor();

    // Scroll to the top: the older ten arrive above, and the message that was at the top stays in view.
    const topBefore = await page.getByTestId("message-user").first().getAttribute("data-message-id");
    await page.locator(".chat-scroll").evaluate((element) => element.scrollTo({ top: 0 }));
    await waitForShown(page, Array.from({ length: 30 }, (_, index) => [`echo:m${index + 1}`, `m${index + 1}`]).flat());
    expect(await page.getByTestId("load-older").count()).toBe(0);
    const keptInView = await page.evaluate((id) => {
      const element = document.querySelector(`[data-message-id="${id}"]`);
      const scroller = document.querySelector(".chat-scroll");
      if (!element || !scroller) return false;
      const box = element.getBoundingClientRect();
      const view = scroller.getBoundingClientRect();
      return box.bottom > view.top && box.top < view.bottom && scroller.scrollTop > 0;
    }, topBefore);
    expect(keptInView).toBe(true);
    await saveScreenshot(page, "long-conversation-older-loaded");
    await page.close();
  });
});
