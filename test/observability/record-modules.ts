// Loaded with NODE_OPTIONS=--import into a real `sluice` process: records every
// @opentelemetry module it resolves and writes the list to SLUICE_TEST_MODULES_FILE
// at exit, so a test can show that tracing off loads no SDK module.
import { writeFileSync } from "node:fs";
import { registerHooks } from "node:module";

const file = process.env.SLUICE_TEST_MODULES_FILE ?? "";
const resolved = new Set<string>();
registerHooks({
  resolve(specifier, context, nextResolve) {
    const result = nextResolve(specifier, context);
    const match = /node_modules\/(@opentelemetry\/[^/]+)\//.exec(result.url);
    if (match?.[1]) resolved.add(match[1]);
    return result;
  },
});
process.on("exit", () => writeFileSync(file, JSON.stringify([...resolved].sort())));
