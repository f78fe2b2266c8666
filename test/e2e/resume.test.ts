// Resuming a streamed reply in a real chromium against the real Sluice:
// reload mid-reply, a second tab on the same reply, and a network break.
// The check for "no repeated and no missing text" is strict: every text the
// page ever showed for the reply must be a prefix of the saved message, and the
// final text must equal it.
import { describe, expect, test, vi } from "vitest";

// A browser, a whole server and replies several seconds long: more than the unit-test default.
vi.setConfig({ testTimeout: 90_000 });
import type { Page } from "playwright-core";
import { saveScreenshot } from "../support/browser/launch-browser.ts";
import { startFaultProxy } from "../support/servers/fault-proxy.ts";
import { useBrowserSession } from "../support/browser/browser-session.ts";
import {
  assistantText,
  normalizeWhitespace,
  recordGenerationRequests,
  savedLastAssistant,
  sendMessage,
  waitForStatus,
  waitUntilServerStreamed,
  waitForStreamedText,
} from "../support/browser/chat-page.ts";

// 20 tokens/s × 200 tokens ≈ 10 s per reply, so a reload or an outage lands mid-reply.
const session = useBrowserSession({ tokensPerSecond: 20, tokenCount: 200 });

/**
 * Records, from the first paint, every text and status the last assistant
 * message shows, so a transiently duplicated fragment is caught too.
 */
const recordReplySnapshots = () => {
  const snapshots: { text: string; status: string }[] = [];
  (window as unknown as { __replySnapshots: typeof snapshots }).__replySnapshots = snapshots;
  const record = () => {
    const messages = document.querySelectorAll('[data-testid="message-assistant"]');
    const last = messages[messages.length - 1];
    if (!last) return;
    const text = (last.querySelector(".markdown")?.textContent ?? "").replace(/\s+/g, " ").trim();
    const status = last.getAttribute("data-status") ?? "";
    const previous = snapshots[snapshots.length - 1];
    if (!previous || previous.text !== text || previous.status !== status) snapshots.push({ text, status });
  };
  new MutationObserver(record).observe(document, { subtree: true, childList: true, characterData: true, attributes: true });
};

async function readSnapshots(page: Page): Promise<{ text: string; status: string }[]> {
  return await page.evaluate(() => (window as unknown as { __replySnapshots?: { text: string; status: string }[] }).__replySnapshots ?? []);
}

function expectEverySnapshotIsAPrefix(snapshots: { text: string }[], saved: string): void {
  const final = normalizeWhitespace(saved);
  for (const snapshot of snapshots) {
    if (!final.startsWith(snapshot.text)) throw new Error(`the page showed text that is not a prefix of the saved reply:\n${snapshot.text}\n---\n${final}`);
  }
}

describe("resuming a reply", () => {
  test("reload mid-reply continues at the exact point and settles to the saved message", async () => {
    const page = await session.signedInPage("reload");
    await sendMessage(page, "A long answer, please");
    const before = await waitForStreamedText(page, 15);

    await page.addInitScript(recordReplySnapshots);
    await page.reload();
    await waitForStatus(page, "completed");

    const saved = await savedLastAssistant(page, session.url);
    expect(saved.status).toBe("completed");
    expect(normalizeWhitespace(await assistantText(page))).toBe(normalizeWhitespace(saved.content));
    expect(normalizeWhitespace(saved.content).startsWith(normalizeWhitespace(before))).toBe(true);
    const snapshots = await readSnapshots(page);
    expect(snapshots.some((snapshot) => snapshot.status === "streaming")).toBe(true);
    expectEverySnapshotIsAPrefix(snapshots, saved.content);
    await page.close();
  });

  test("a second tab on the same conversation streams the same reply live", async () => {
    const first = await session.signedInPage("tabs");
    await sendMessage(first, "Stream to two tabs");
    await waitForStreamedText(first, 5);

    const second = await session.browser.newPage();
    await second.addInitScript(recordReplySnapshots);
    await second.goto(first.url());
    const seen = await waitForStreamedText(second, 1);
    await waitForStreamedText(second, seen.trim().length + 10);

    await Promise.all([waitForStatus(first, "completed"), waitForStatus(second, "completed")]);
    const saved = await savedLastAssistant(second, session.url);
    expect(normalizeWhitespace(await assistantText(first))).toBe(normalizeWhitespace(saved.content));
    expect(normalizeWhitespace(await assistantText(second))).toBe(normalizeWhitespace(saved.content));
    expectEverySnapshotIsAPrefix(await readSnapshots(second), saved.content);
    await Promise.all([first.close(), second.close()]);
  });

  test("a network break shows the connection indicator, then resumes at the cursor by itself", async () => {
    // Chromium's offline emulation leaves an open EventSource response flowing, so it cannot stand
    // in for a real outage; resetting the sockets can.
    const proxy = await startFaultProxy(session.url);
    try {
      const page = await session.signedInPage("outage", proxy.url);
      await page.addInitScript(recordReplySnapshots);
      await page.reload();
      const generationRequests = recordGenerationRequests(page);
      await sendMessage(page, "Keep going through an outage");
      await waitForStreamedText(page, 10);

      proxy.setMode({ kind: "drop" });
      await page.getByTestId("connection-status").waitFor({ state: "visible" });
      await saveScreenshot(page, "reconnecting");
      // Stay away until the worker has written well past what the page shows,
      // so coming back must replay the missed part from the cursor.
      const atBreak = normalizeWhitespace(await assistantText(page));
      await waitUntilServerStreamed(page, session.url, atBreak.length + 30);
      expect(normalizeWhitespace(await assistantText(page))).toBe(atBreak);
      proxy.setMode({ kind: "pass" });

      await page.getByTestId("connection-status").waitFor({ state: "detached", timeout: 30_000 });
      await waitForStatus(page, "completed");
      const saved = await savedLastAssistant(page, session.url);
      expect(normalizeWhitespace(await assistantText(page))).toBe(normalizeWhitespace(saved.content));
      expect(normalizeWhitespace(saved.content).startsWith(atBreak)).toBe(true);
      expectEverySnapshotIsAPrefix(await readSnapshots(page), saved.content);
      // The reply began in the POST's own stream; the break moved it to `GET streamUrl` at the cursor.
      expect(generationRequests[0]?.contentType).toBe("text/event-stream");
      expect(generationRequests.some((request) => request.method === "GET" && request.path.startsWith("/api/stream/"))).toBe(true);
      await page.close();
    } finally {
      await proxy.close();
    }
  });
});
