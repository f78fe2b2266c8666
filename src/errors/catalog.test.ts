import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { errorCatalog } from "./catalog.ts";

const root = new URL("../../", import.meta.url).pathname;
const codes = Object.keys(errorCatalog);
/** A code as a whole word: `NOT_FOUND` is not found inside `STREAM_NOT_FOUND`. */
const mentions = (text: string, code: string): boolean => new RegExp(`(?<![A-Z0-9_])${code}(?![A-Z0-9_])`).test(text);

function sourceFiles(directory: string): string[] {
  return readdirSync(directory, { withFileTypes: true }).flatMap((entry) => {
    const path = join(directory, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith(".ts") && !entry.name.endsWith(".test.ts") ? [path] : [];
  });
}

describe("the error catalog", () => {
  it("every code is documented for clients in PROTOCOL.md or README.md", () => {
    const documents = ["PROTOCOL.md", "README.md"].map((name) => readFileSync(join(root, name), "utf8")).join("\n");
    expect(codes.filter((code) => !mentions(documents, code))).toEqual([]);
  });

  it("every code is raised somewhere in src (unused codes go)", () => {
    const source = sourceFiles(join(root, "src"))
      .filter((path) => !path.endsWith(join("errors", "catalog.ts")))
      .map((path) => readFileSync(path, "utf8"))
      .join("\n");
    expect(codes.filter((code) => !source.includes(`"${code}"`))).toEqual([]);
  });
});
