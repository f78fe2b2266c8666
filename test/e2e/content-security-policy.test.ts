// The built chat UI in a real chromium under Sluice's Content-Security-Policy
// (src/api/web/register-security-headers.ts): it works without a single violation,
// and an image from another origin in model output is a link the browser never fetches.
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, test, vi } from "vitest";
import { saveScreenshot } from "../support/browser/launch-browser.ts";
import { useBrowserSession } from "../support/browser/browser-session.ts";
import { lastAssistant, register, sendMessage, uniqueEmail, waitForStatus } from "../support/browser/chat-page.ts";

vi.setConfig({ testTimeout: 90_000 });

const session = useBrowserSession({ tokensPerSecond: 200, tokenCount: 40 });
// Another origin (another port) that counts every request: a tracking pixel's server.
const trackerHits: string[] = [];
const tracker = createServer((request, response) => {
  trackerHits.push(request.url ?? "");
  response.writeHead(200, { "content-type": "image/gif" }).end(Buffer.from("R0lGODlhAQABAAAAACw=", "base64"));
});

beforeAll(async () => {
  await new Promise<void>((resolve) => tracker.listen(0, "127.0.0.1", resolve));
}, 120_000);

afterAll(async () => {
  await new Promise((resolve) => tracker.close(resolve));
});

describe("under the Content-Security-Policy", () => {
  test("the UI signs in, streams and renders a reply with no violation; another origin's image is a link, never fetched", async () => {
    const page = await session.browser.newPage();
    await page.addInitScript(() => {
      const seen: string[] = [];
      (window as unknown as { __cspViolations: string[] }).__cspViolations = seen;
      document.addEventListener("securitypolicyviolation", (event) => seen.push(`${event.violatedDirective} ${event.blockedURI}`));
    });
    const consoleViolations: string[] = [];
    page.on("console", (message) => {
      if (message.text().includes("Content Security Policy")) consoleViolations.push(message.text());
    });
    const response = await page.goto(`${session.url}/`);
    expect(response?.headers()["content-security-policy"]).toContain("img-src 'self' data:");
    expect(response?.headers()["referrer-policy"]).toBe("no-referrer");

    await register(page, session.url, uniqueEmail("csp"));
    const trackerUrl = `http://127.0.0.1:${(tracker.address() as AddressInfo).port}/pixel.gif?reader=me`;
    const dataImage = "data:image/gif;base64,R0lGODlhAQABAAAAACw=";
    await sendMessage(page, `echo:**Chart** ![tracking pixel](${trackerUrl}) and ![inline dot](${dataImage})`);
    await waitForStatus(page, "completed");

    const reply = lastAssistant(page);
    expect(await reply.locator("strong").textContent()).toBe("Chart");
    const link = reply.locator("a.external-image");
    expect(await link.textContent()).toBe("tracking pixel");
    expect(await link.getAttribute("href")).toBe(trackerUrl);
    expect(await reply.locator("img").count()).toBe(1);
    expect(await reply.locator("img").getAttribute("src")).toBe(dataImage);
    await saveScreenshot(page, "csp-external-image");

    // The reply came from the saved message too (reload): still no fetch of the other origin.
    await page.reload();
    await waitForStatus(page, "completed");
    expect(trackerHits).toEqual([]);
    expect(await page.evaluate(() => (window as unknown as { __cspViolations: string[] }).__cspViolations)).toEqual([]);
    expect(consoleViolations).toEqual([]);
    await page.close();
  });
});
