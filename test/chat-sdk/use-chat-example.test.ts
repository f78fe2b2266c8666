import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { preview, type PreviewServer } from "vite";
import { afterAll, beforeAll, expect, it } from "vitest";
import { chatConversationId } from "../../src/chat/ui-chats-service.ts";
import { registerUser, waitForFinalReply, type ChatUser } from "../support/client/chat-api.ts";
import { startSluice, type InProcessSluice } from "../support/sluice/start-sluice.ts";
import { viteBuild } from "../support/browser/ensure-web-built.ts";
import { launchBrowser, saveScreenshot, type TestBrowser } from "../support/browser/launch-browser.ts";

const exampleRoot = join(import.meta.dirname, "..", "..", "examples", "use-chat");

let sluice: InProcessSluice;
let user: ChatUser;
let outDirectory: string;
let server: PreviewServer;
let browser: TestBrowser;

/** `vite build` of the example as a user would run it (React's production build), into a temporary folder. */
async function buildExample(outDir: string): Promise<void> {
  await viteBuild({ config: join(exampleRoot, "vite.config.ts"), cwd: exampleRoot, extraArgs: ["--outDir", outDir, "--emptyOutDir"] });
}

beforeAll(async () => {
  // About 4 s per reply: long enough to reload in the middle of it.
  sluice = await startSluice({ label: "use-chat-example", env: { SIMULATED_TOKENS_PER_SECOND: "40", SIMULATED_TOKEN_COUNT: "160" } });
  user = await registerUser(sluice.url, "use-chat");
  outDirectory = mkdtempSync(join(tmpdir(), "sluice-use-chat-example-"));
  await buildExample(outDirectory);
  // The example's own server, on its own origin, forwarding /api to Sluice (its vite.config.ts).
  server = await preview({
    configFile: join(exampleRoot, "vite.config.ts"),
    root: exampleRoot,
    logLevel: "warn",
    build: { outDir: outDirectory },
    preview: { host: "127.0.0.1", port: 0, strictPort: false, proxy: { "/api": { target: sluice.url, changeOrigin: true } } },
  });
  browser = await launchBrowser();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
  await sluice?.stop();
  if (outDirectory) rmSync(outDirectory, { recursive: true, force: true });
});

it("useChat streams a reply from Sluice, resumes it after a reload mid-reply, and ends with the saved message's text", async () => {
  const origin = server.resolvedUrls?.local[0]?.replace(/\/$/, "");
  expect(origin).toBeDefined();
  const page = await browser.newPage();
  const chatId = "example-reload-chat";
  await page.goto(`${origin}/?chat=${chatId}`);
  // The example's sign-in (POST /api/auth/login through its origin); the token survives the reload.
  await page.getByLabel("Email").fill(user.email);
  await page.getByLabel("Password").fill("correct horse battery");
  await page.getByRole("button", { name: "Sign in to Sluice" }).click();

  await page.getByLabel("Message").fill("tell me a long story");
  await page.getByRole("button", { name: "Send" }).click();
  const assistantText = page.locator('article[data-role="assistant"] [data-part="text"]');
  // Mid-reply: some text has arrived, the reply is still streaming.
  await page.waitForFunction(() => (document.querySelector('article[data-role="assistant"] [data-part="text"]')?.textContent?.length ?? 0) > 20);
  expect(await page.locator("main").getAttribute("data-status")).toBe("streaming");
  const beforeReload = (await assistantText.textContent()) ?? "";

  const resumed = page.waitForResponse((response) => response.url().endsWith(`/api/chat/${chatId}/stream`));
  await page.reload();
  // The reload found the reply still generating: the resume answered its stream, not 204.
  expect((await resumed).status()).toBe(200);
  await page.locator('main[data-status="ready"] article[data-role="assistant"]').waitFor({ timeout: 20_000 });
  await page.waitForFunction(() => document.querySelector("main")?.getAttribute("data-status") === "ready");
  await saveScreenshot(page, "use-chat-example-resumed");

  const conversationId = chatConversationId(chatId);
  const conversation = await user.conversation(conversationId);
  const saved = await waitForFinalReply(user, conversationId, conversation.messages[1]?.taskId ?? "");
  expect(saved.status).toBe("completed");
  // The user's message came from the saved history, the reply from the resumed stream: each once.
  await expect.poll(() => page.locator("article").count()).toBe(2);
  expect(await page.locator('article[data-role="user"]').textContent()).toContain("tell me a long story");
  expect(await assistantText.count()).toBe(1);
  expect(await assistantText.textContent()).toBe(saved.content);
  expect(saved.content.startsWith(beforeReload)).toBe(true);
  expect(saved.content.length).toBeGreaterThan(beforeReload.length);
  expect(await page.locator("article[data-role=assistant]").getAttribute("data-message-id")).toBe(saved.id);

  // Once the reply is saved, a reload shows it from the history and the resume finds nothing (204).
  const nothingActive = page.waitForResponse((response) => response.url().endsWith(`/api/chat/${chatId}/stream`));
  await page.reload();
  expect((await nothingActive).status()).toBe(204);
  await page.locator('article[data-role="assistant"]').waitFor();
  expect(await page.locator("article").count()).toBe(2);
  expect(await assistantText.textContent()).toBe(saved.content);
});
