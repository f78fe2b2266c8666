// A model's reasoning in a real chromium against the real Sluice (the simulated model's
// `think:` directive): shown collapsed under "Thinking", live while it streams, with its
// duration, and the same after a reload, mid-reasoning and once saved.
import { describe, expect, test, vi } from "vitest";

// A browser, a whole server and replies several seconds long: more than the unit-test default.
vi.setConfig({ testTimeout: 90_000 });
import type { Page } from "playwright-core";
import { saveScreenshot } from "../support/browser/launch-browser.ts";
import { useBrowserSession } from "../support/browser/browser-session.ts";
import { assistantText, lastAssistant, normalizeWhitespace, savedLastAssistant, sendMessage, waitForStatus } from "../support/browser/chat-page.ts";

// 10 tokens/s: the simulated model's 40 words of reasoning take 4 s, then a 20-word answer 2 s.
const session = useBrowserSession({ tokensPerSecond: 10, tokenCount: 20 });

const reasoningOf = (page: Page) => lastAssistant(page).getByTestId("message-reasoning");

/** Waits until the last reply's reasoning is live ("Thinking…") and holds at least `minimum` characters. */
async function waitForLiveReasoning(page: Page, minimum: number): Promise<string> {
  const handle = await page.waitForFunction(
    (least) => {
      const messages = document.querySelectorAll('[data-testid="message-assistant"]');
      const reasoning = messages[messages.length - 1]?.querySelector('[data-testid="message-reasoning"]');
      const text = reasoning?.querySelector(".reasoning-text")?.textContent ?? "";
      return reasoning?.getAttribute("data-state") === "thinking" && text.length >= least ? text : false;
    },
    minimum,
    { timeout: 30_000 },
  );
  return (await handle.jsonValue()) as string;
}

/** The summary once the reasoning is done, as web/src/chat/reasoning-view.tsx words a duration of a few seconds. */
const doneSummary = (durationMs: number | null | undefined): string => `Thinking${Math.round((durationMs ?? 0) / 1000)} s`;

describe("reasoning", () => {
  test("streams live under a collapsed Thinking, ends with its duration, and shows the saved reasoning after a reload", async () => {
    const page = await session.signedInPage("reasoning");
    await sendMessage(page, "think:Why is the sky blue?");

    // Live: collapsed under "Thinking…", no answer yet, and the text grows while the reader watches.
    const first = await waitForLiveReasoning(page, 1);
    const live = reasoningOf(page);
    expect(await live.getAttribute("open")).toBeNull();
    expect(await live.locator("summary").textContent()).toMatch(/^Thinking…/);
    expect(await lastAssistant(page).getAttribute("data-status")).toBe("streaming");
    await live.locator("summary").click();
    expect(await live.getAttribute("open")).not.toBeNull();
    expect(await live.locator(".reasoning-text").isVisible()).toBe(true);
    const later = await waitForLiveReasoning(page, first.length + 20);
    expect(later.startsWith(first)).toBe(true);
    await saveScreenshot(page, "reasoning-live");

    await waitForStatus(page, "completed");
    const saved = await savedLastAssistant(page, session.url);
    expect(saved.reasoning?.text.length).toBeGreaterThan(0);
    // About 4 s of reasoning at 10 words/s, as the worker measured it.
    expect(saved.reasoning?.durationMs).toBeGreaterThan(2_000);
    const done = reasoningOf(page);
    expect(await done.getAttribute("data-state")).toBe("done");
    expect(normalizeWhitespace((await done.locator(".reasoning-text").textContent()) ?? "")).toBe(normalizeWhitespace(saved.reasoning?.text ?? ""));
    expect(await done.locator("summary").textContent()).toBe(doneSummary(saved.reasoning?.durationMs));
    // The answer is the text alone: no reasoning in it.
    expect(normalizeWhitespace(await assistantText(page))).toBe(normalizeWhitespace(saved.content));

    await page.reload();
    await waitForStatus(page, "completed");
    const reloaded = reasoningOf(page);
    await reloaded.waitFor();
    expect(await reloaded.getAttribute("open")).toBeNull();
    expect(await reloaded.locator("summary").textContent()).toBe(doneSummary(saved.reasoning?.durationMs));
    await reloaded.locator("summary").click();
    expect(normalizeWhitespace((await reloaded.locator(".reasoning-text").textContent()) ?? "")).toBe(normalizeWhitespace(saved.reasoning?.text ?? ""));
    await saveScreenshot(page, "reasoning-saved");
    await page.close();
  });

  test("a reload mid-reasoning shows Thinking live again, rebuilt from the log, then the saved reasoning", async () => {
    const page = await session.signedInPage("reasoning-reload");
    await sendMessage(page, "think:And why are sunsets red?");
    const before = await waitForLiveReasoning(page, 10);

    await page.reload();
    const after = await waitForLiveReasoning(page, before.length);
    expect(after.startsWith(before)).toBe(true);
    await waitForStatus(page, "completed");
    const saved = await savedLastAssistant(page, session.url);
    expect(normalizeWhitespace((await reasoningOf(page).locator(".reasoning-text").textContent()) ?? "")).toBe(normalizeWhitespace(saved.reasoning?.text ?? ""));
    expect(saved.reasoning?.text.startsWith(before)).toBe(true);
    await page.close();
  });
});
