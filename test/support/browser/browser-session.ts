import type { Page } from "playwright-core";
import { afterAll, beforeAll } from "vitest";
import { startSluice, type ProcessSluice } from "../sluice/start-sluice.ts";
import { register, uniqueEmail } from "./chat-page.ts";
import { ensureWebBuilt } from "./ensure-web-built.ts";
import { launchBrowser, type TestBrowser } from "./launch-browser.ts";

export interface BrowserSession {
  /** The Sluice the browser talks to, e.g. http://127.0.0.1:41234. */
  readonly url: string;
  readonly browser: TestBrowser;
  /** A new tab on the app, signed out (the browser's tabs share localStorage, as real tabs do). */
  freshPage(baseUrl?: string): Promise<Page>;
  /** A new tab signed in as a fresh account named after `label`. */
  signedInPage(label: string, baseUrl?: string): Promise<Page>;
}

/**
 * For a browser test file: before all its tests, builds web/dist if stale and starts a real Sluice
 * (one `sluice start` process with the web UI and the simulated model at `replies`' pace) and a
 * headless chromium; after them, stops both.
 *
 * Set SLUICE_E2E_BASE_URL to point the browser tests at a Sluice you started yourself.
 *
 * @example const session = useBrowserSession({ tokensPerSecond: 400, tokenCount: 40 });
 */
export function useBrowserSession(replies: { tokensPerSecond: number; tokenCount: number }): BrowserSession {
  let sluice: ProcessSluice | undefined;
  let browser: TestBrowser | undefined;
  let url = process.env.SLUICE_E2E_BASE_URL?.replace(/\/$/, "");
  beforeAll(async () => {
    await ensureWebBuilt();
    const started = await Promise.all([
      url === undefined
        ? startSluice({
            label: "e2e",
            mode: "processes",
            recovery: "shipped",
            env: { ENABLE_WEB_UI: "true", SIMULATED_TOKENS_PER_SECOND: String(replies.tokensPerSecond), SIMULATED_TOKEN_COUNT: String(replies.tokenCount) },
          })
        : undefined,
      launchBrowser(),
    ]);
    [sluice, browser] = started;
    url ??= sluice?.url;
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await sluice?.stop();
  });
  const session: BrowserSession = {
    get url() {
      if (url === undefined) throw new Error("Sluice is not started yet (beforeAll)");
      return url;
    },
    get browser() {
      if (!browser) throw new Error("the browser is not launched yet (beforeAll)");
      return browser;
    },
    freshPage: async (baseUrl = session.url) => {
      const page = await session.browser.newPage();
      await page.goto(`${baseUrl}/`);
      await page.evaluate(() => localStorage.clear());
      await page.reload();
      return page;
    },
    signedInPage: async (label, baseUrl = session.url) => {
      const page = await session.browser.newPage();
      await page.goto(`${baseUrl}/`);
      await page.evaluate(() => localStorage.clear());
      await register(page, baseUrl, uniqueEmail(label));
      return page;
    },
  };
  return session;
}
