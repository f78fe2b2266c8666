import { spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const fixture = fileURLToPath(new URL("./log-from-two-threads.fixture.ts", import.meta.url));

async function runFixture(lines: number): Promise<string[]> {
  const child = spawn(process.execPath, [fixture, String(lines)], { stdio: ["ignore", "pipe", "inherit"] });
  let output = "";
  child.stdout.setEncoding("utf8");
  child.stdout.on("data", (chunk: string) => (output += chunk));
  const [code] = (await once(child, "exit")) as [number | null];
  expect(code).toBe(0);
  return output.split("\n").filter((line) => line !== "");
}

describe("the standard output logger (asynchronous)", () => {
  it("loses no line of a worker thread terminated after its stop, nor of a process that exits at once, and writes each line whole", async () => {
    const lines = 3_000;
    const written = (await runFixture(lines)).map((line) => JSON.parse(line) as { thread: string; index?: number; msg: string });
    const indexes = (thread: string): Array<number | undefined> => written.filter((line) => line.thread === thread && line.msg === "line").map((line) => line.index);
    const inOrder = Array.from({ length: lines }, (_, index) => index);
    expect(indexes("main")).toEqual(inOrder);
    expect(indexes("worker")).toEqual(inOrder);
    // Logged right before process.exit(): only the exit flush writes it.
    expect(written.at(-1)).toMatchObject({ thread: "main", msg: "last line" });
  });
});
