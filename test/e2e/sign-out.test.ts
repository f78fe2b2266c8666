// The chat UI's "Sign out" in a real chromium against the real Sluice: the token is revoked on the
// server, not only forgotten by the browser (issue 12).
import { describe, expect, test, vi } from "vitest";

vi.setConfig({ testTimeout: 90_000 });
import { useBrowserSession } from "../support/browser/browser-session.ts";
import { register, uniqueEmail } from "../support/browser/chat-page.ts";

const session = useBrowserSession({ tokensPerSecond: 50, tokenCount: 10 });

describe("signing out", () => {
  test("Sign out revokes the session's token on the server", async () => {
    const page = await session.browser.newPage();
    await page.goto(`${session.url}/`);
    await page.evaluate(() => localStorage.clear());
    await register(page, session.url, uniqueEmail("sign-out"));
    const token = await page.evaluate(() => (JSON.parse(localStorage.getItem("sluice.session") ?? "{}") as { token?: string }).token ?? "");
    expect(token).toMatch(/^sls_/);
    const me = () => fetch(`${session.url}/api/me`, { headers: { authorization: `Bearer ${token}` } }).then((response) => response.status);
    expect(await me()).toBe(200);

    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByTestId("auth-email").waitFor();
    expect(await page.evaluate(() => localStorage.getItem("sluice.session"))).toBeNull();
    // A copy of the token (another device, a leaked log) is dead too.
    expect(await me()).toBe(401);
    await page.close();
  });
});
