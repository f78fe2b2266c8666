import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { describe, expect, it } from "vitest";

// STYLE.md "dependencies point one way": the product never depends on its tests
// or its benchmarks. Only `*.test.ts` files may reach into test/ (fake servers,
// shared suites); everything else under src/ must run without them.
const root = resolve(new URL("../", import.meta.url).pathname);
const sourceRoot = join(root, "src");
const forbiddenRoots = ["test", "bench"].map((name) => join(root, name) + sep);
/** Static `from "…"`, side-effect `import "…"` and dynamic `import("…")` specifiers. */
const specifierPattern = /(?:\bfrom\s*|\bimport\s*\(?\s*)["'](\.{1,2}\/[^"']*)["']/g;

function productFiles(directory: string): string[] {
  return readdirSync(directory, { withFileTypes: true }).flatMap((entry) => {
    const path = join(directory, entry.name);
    if (entry.isDirectory()) return productFiles(path);
    return /\.tsx?$/.test(entry.name) && !entry.name.endsWith(".test.ts") ? [path] : [];
  });
}

function forbiddenImports(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const found: string[] = [];
  for (const match of text.matchAll(specifierPattern)) {
    const target = resolve(dirname(file), match[1] ?? "");
    if (forbiddenRoots.some((forbidden) => target.startsWith(forbidden))) found.push(`${relative(root, file)} imports ${match[1]}`);
  }
  if (/from\s*["']vitest["']/.test(text)) found.push(`${relative(root, file)} imports vitest`);
  return found;
}

/** Bare package specifiers (`"pino"`, `"@fastify/static"`, `"eventsource-parser/stream"`), not `node:` ones. */
const packagePattern = /(?:\bfrom\s*|\bimport\s*\(?\s*)["']((?:@[^/"']+\/)?[^./"'][^/"']*)(?:\/[^"']*)?["']/g;

function devOnlyImports(file: string, dependencies: ReadonlySet<string>): string[] {
  const text = readFileSync(file, "utf8");
  return [...text.matchAll(packagePattern)]
    .map((match) => match[1] ?? "")
    .filter((name) => !name.startsWith("node:") && !dependencies.has(name))
    .map((name) => `${relative(root, file)} imports ${name}`);
}

describe("dependency direction", () => {
  // The image installs production dependencies only (Dockerfile: npm ci --omit=dev): a package the
  // product imports at run time but lists under devDependencies works here and fails there.
  it("every package a non-test file under src/ imports is a production dependency", () => {
    const manifest = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { dependencies: Record<string, string> };
    const dependencies = new Set(Object.keys(manifest.dependencies));
    const files = productFiles(sourceRoot).filter((file) => !file.endsWith(".fixture.ts"));
    expect(files.flatMap((file) => devOnlyImports(file, dependencies))).toEqual([]);
  });

  it("no non-test file under src/ imports from test/ or bench/, or imports vitest", () => {
    const files = productFiles(sourceRoot);
    expect(files.length).toBeGreaterThan(50);
    expect(files.flatMap(forbiddenImports)).toEqual([]);
  });
});
