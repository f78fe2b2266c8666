// Finding and naming conversations in a real chromium against the real Sluice (simulated model):
// inline rename in the header (Enter saves, Escape cancels, a refused title shows its error),
// search over titles and message text that opens at the matching message, and token usage.
import { describe, expect, test, vi } from "vitest";

vi.setConfig({ testTimeout: 120_000 });
import { saveScreenshot } from "../support/browser/launch-browser.ts";
import { conversationIdFromUrl, fetchSavedConversation, register, uniqueEmail, echoTurn } from "../support/browser/chat-page.ts";
import { useBrowserSession } from "../support/browser/browser-session.ts";

// Fast replies: this file is about the sidebar and the header, not streaming.
const session = useBrowserSession({ tokensPerSecond: 400, tokenCount: 40 });

const filler = (topic: string) =>
  Array.from({ length: 8 }, (_, index) => `Paragraph ${index + 1} about ${topic}: long enough to push earlier turns out of view.`).join("\n\n");

describe("finding and naming conversations", () => {
  test("rename inline, search titles and text, open a result at its message, see token usage", async () => {
    const page = await session.freshPage();
    await register(page, session.url, uniqueEmail("find"));

    // Conversation A: the word to find is in its first turn, far above the latest.
    await echoTurn(page, "Grandma's recipe: bitter orange marmalade with a splash of whisky.");
    const recipeConversation = conversationIdFromUrl(page);
    for (const topic of ["jars", "labels", "storage"]) await echoTurn(page, filler(topic));

    // Conversation B, where the rename happens.
    await page.getByTestId("new-conversation").click();
    await echoTurn(page, "Drive the coast road and stop at every lighthouse.");
    const tripConversation = conversationIdFromUrl(page);

    // Per-message usage under the reply.
    const usage = page.getByTestId("message-usage").last();
    await usage.waitFor();
    expect(await usage.textContent()).toMatch(/^\d+ in · \d+ out$/);

    // Rename with the keyboard: Enter saves, the header and the sidebar both change.
    await page.getByTestId("conversation-rename").click();
    const input = page.getByTestId("conversation-title-input");
    await input.waitFor();
    expect(await input.evaluate((element) => element === document.activeElement)).toBe(true);
    await input.fill("Road trip ideas");
    await saveScreenshot(page, "rename-editing");
    await input.press("Enter");
    await page.getByTestId("conversation-title").filter({ hasText: "Road trip ideas" }).waitFor();
    await page.locator(`[data-testid="conversation-list"] [data-conversation-id="${tripConversation}"]`).filter({ hasText: "Road trip ideas" }).waitFor();
    expect((await fetchSavedConversation(page, session.url, tripConversation)).title).toBe("Road trip ideas");

    // Escape cancels without saving.
    await page.getByTestId("conversation-rename").click();
    await input.fill("Not this one");
    await input.press("Escape");
    await page.getByTestId("conversation-title").filter({ hasText: "Road trip ideas" }).waitFor();
    expect(await input.count()).toBe(0);

    // A blank title is refused by the API; the field stays open and says why.
    await page.getByTestId("conversation-rename").click();
    await input.fill("   ");
    await input.press("Enter");
    const error = page.getByTestId("conversation-title-error");
    await error.waitFor();
    expect(await error.textContent()).toContain("VALIDATION_FAILED");
    expect(await input.getAttribute("aria-invalid")).toBe("true");
    await saveScreenshot(page, "rename-error");
    await input.press("Escape");
    expect((await fetchSavedConversation(page, session.url, tripConversation)).title).toBe("Road trip ideas");

    // The new title survives a reload.
    await page.reload();
    await page.getByTestId("conversation-title").filter({ hasText: "Road trip ideas" }).waitFor();

    // Search by message text: a result with a highlighted snippet; it opens at that message.
    const searchBox = page.getByTestId("conversation-search");
    await searchBox.fill("marmalade");
    const result = page.getByTestId("search-result").filter({ has: page.locator("mark", { hasText: "marmalade" }) });
    await result.waitFor();
    expect(await page.getByTestId("search-result").count()).toBe(1);
    expect(await result.getAttribute("data-conversation-id")).toBe(recipeConversation);
    await saveScreenshot(page, "search-results");
    await result.locator("a").click();
    await page.waitForURL(`**/c/${recipeConversation}`);
    const found = page.locator('[data-highlighted="true"]');
    await found.waitFor();
    expect(await found.textContent()).toContain("bitter orange marmalade");
    // Scrolled to: the found message is inside the visible part of the chat, not at the bottom.
    await page.waitForFunction(() => {
      const element = document.querySelector('[data-highlighted="true"]');
      const scroller = document.querySelector(".chat-scroll");
      if (!element || !scroller) return false;
      const box = element.getBoundingClientRect();
      const view = scroller.getBoundingClientRect();
      return box.top >= view.top && box.bottom <= view.bottom && scroller.scrollTop + scroller.clientHeight < scroller.scrollHeight - 50;
    });
    await saveScreenshot(page, "search-opened-at-message");

    // Search by title: the renamed conversation, without a message snippet.
    await searchBox.fill("road trip");
    const byTitle = page.locator(`[data-testid="search-result"][data-conversation-id="${tripConversation}"]`);
    await byTitle.waitFor();
    expect(await byTitle.getByTestId("search-snippet").count()).toBe(0);
    // Renaming the open conversation while searching updates the results.
    await page.getByTestId("conversation-rename").click();
    await input.fill("Road trip snacks");
    await input.press("Enter");
    await page.locator(`[data-testid="search-result"][data-conversation-id="${recipeConversation}"]`).filter({ hasText: "Road trip snacks" }).waitFor();
    expect(await page.getByTestId("search-result").count()).toBe(2);

    // Nothing found says so; Escape clears the search and the list comes back.
    await searchBox.fill("xylophone");
    await page.getByTestId("search-empty").waitFor();
    await searchBox.press("Escape");
    await page.getByTestId("conversation-list").waitFor();
    expect(await page.getByTestId("conversation-list").locator("li").count()).toBe(2);

    // The account's token total in the sidebar (GET /api/me): counted, and the same after a reload.
    const usageTotal = page.getByTestId("account-usage");
    await page.waitForFunction(() => /^[1-9][\d,.]*\s?\w* tokens used$/.test(document.querySelector('[data-testid="account-usage"]')?.textContent ?? ""));
    const shown = await usageTotal.textContent();
    await page.reload();
    await usageTotal.filter({ hasText: shown ?? "" }).waitFor();

    // At phone width the search lives in the slide-in sidebar; a result closes it and opens the chat.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.getByRole("button", { name: "Open conversations" }).click();
    await searchBox.fill("lighthouse");
    await page.locator(`[data-testid="search-result"][data-conversation-id="${tripConversation}"]`).waitFor();
    await page.waitForFunction(() => {
      const sidebar = document.querySelector(".sidebar");
      return sidebar !== null && getComputedStyle(sidebar).transform === "none";
    });
    await saveScreenshot(page, "phone-search");
    await page.locator(`[data-testid="search-result"][data-conversation-id="${tripConversation}"] a`).click();
    await page.waitForURL(`**/c/${tripConversation}`);
    await page.locator('[data-highlighted="true"]').filter({ hasText: "every lighthouse" }).first().waitFor();
    await page.close();
  });
});
