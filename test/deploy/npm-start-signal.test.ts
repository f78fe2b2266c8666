import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { describe, expect, it, onTestFinished } from "vitest";
import { isAlive } from "../support/servers/is-alive.ts";

const root = join(import.meta.dirname, "..", "..");
const startScript = (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { scripts: { start: string } }).scripts.start;

// A process manager (systemd, a container runtime, `kill <pid>`) signals npm, not the server
// under it. With `sh -c "bash scripts/start.sh"` the shell died of the SIGTERM that npm passed
// on, and the server went on running, orphaned. This runs package.json's real `start` command
// under npm, with scripts/start.sh replaced by a stand-in that reports its PID and the signal.
describe("npm start", () => {
  it("passes the SIGTERM npm gets on to the server, and npm exits only once the server has", async () => {
    const directory = mkdtempSync(join(tmpdir(), "sluice-npm-start-"));
    onTestFinished(() => rmSync(directory, { recursive: true, force: true }));
    mkdirSync(join(directory, "scripts"));
    writeFileSync(join(directory, "package.json"), JSON.stringify({ name: "npm-start-signal", private: true, scripts: { start: startScript } }));
    const server = `process.on("SIGTERM", () => { console.log("got SIGTERM"); process.exit(0); }); console.log("pid " + process.pid); setInterval(() => undefined, 1000);`;
    writeFileSync(join(directory, "scripts", "start.sh"), `exec "${process.execPath}" -e '${server}'\n`);

    const npm = spawn("npm", ["start", "--silent"], { cwd: directory, stdio: ["ignore", "pipe", "inherit"] });
    const exited = new Promise<number | null>((resolve) => npm.once("exit", (code) => resolve(code)));
    const lines: string[] = [];
    const pid = await new Promise<number>((resolve, reject) => {
      createInterface({ input: npm.stdout }).on("line", (line) => {
        lines.push(line);
        if (line.startsWith("pid ")) resolve(Number(line.slice(4)));
      });
      void exited.then(() => reject(new Error(`npm exited before the server started: ${lines.join("\n")}`)));
    });
    onTestFinished(() => {
      if (isAlive(pid)) process.kill(pid, "SIGKILL");
    });

    npm.kill("SIGTERM");
    await exited;
    expect(lines).toContain("got SIGTERM");
    expect(isAlive(pid)).toBe(false);
  });
});
