import { spawn } from "node:child_process";
import { mkdir, readdir, rmdir, stat } from "node:fs/promises";
import { join } from "node:path";

const repositoryRoot = join(import.meta.dirname, "..", "..", "..");
const webRoot = join(repositoryRoot, "web");
const builtIndex = join(webRoot, "dist", "index.html");
const lockDirectory = join(repositoryRoot, "test-artifacts", ".web-build-lock");
/** A lock older than this was left by a killed run. */
const staleLockMs = 120_000;

/**
 * Builds web/dist when it is missing or older than the sources, so the browser
 * tests never exercise a stale UI. Test files run in parallel; a mkdir lock
 * keeps two of them from writing web/dist at once.
 */
export async function ensureWebBuilt(): Promise<void> {
  await mkdir(join(repositoryRoot, "test-artifacts"), { recursive: true });
  const deadline = Date.now() + staleLockMs;
  for (;;) {
    try {
      await mkdir(lockDirectory);
      break;
    } catch {
      const lockAgeMs = Date.now() - (await stat(lockDirectory).then((info) => info.mtimeMs, () => Date.now()));
      if (lockAgeMs > staleLockMs || Date.now() > deadline) await rmdir(lockDirectory).catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  try {
    if (await isFresh()) return;
    await runViteBuild();
  } finally {
    await rmdir(lockDirectory).catch(() => undefined);
  }
}

async function isFresh(): Promise<boolean> {
  const builtAt = await stat(builtIndex).then((info) => info.mtimeMs, () => 0);
  if (builtAt === 0) return false;
  const sources = [join(webRoot, "index.html"), join(webRoot, "vite.config.ts"), ...(await listFiles(join(webRoot, "src")))];
  for (const file of sources) {
    if ((await stat(file)).mtimeMs > builtAt) return false;
  }
  return true;
}

async function listFiles(directory: string): Promise<string[]> {
  const entries = await readdir(directory, { withFileTypes: true, recursive: true });
  return entries.filter((entry) => entry.isFile()).map((entry) => join(entry.parentPath, entry.name));
}

async function runViteBuild(): Promise<void> {
  await viteBuild({ config: join(webRoot, "vite.config.ts"), cwd: repositoryRoot });
}

/**
 * `vite build` in a child process with React's production build (vitest sets NODE_ENV=test,
 * which would make vite bundle the development build); fails with vite's output.
 */
export async function viteBuild(options: { config: string; cwd: string; extraArgs?: readonly string[] }): Promise<void> {
  const viteCli = join(repositoryRoot, "node_modules", "vite", "bin", "vite.js");
  const child = spawn(process.execPath, [viteCli, "build", "--config", options.config, ...(options.extraArgs ?? []), "--logLevel", "warn"], {
    cwd: options.cwd,
    env: { ...process.env, NODE_ENV: "production" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  if (code !== 0) throw new Error(`vite build of ${options.config} failed (${code}):\n${output}`);
}
