// Lint is part of `npm test`. The two rules that matter most in streaming code:
// a floating promise is an error nobody sees, and an import cycle is an
// architecture leak (see STYLE.md: dependencies point one way).
import tseslint from "typescript-eslint";
import { createNodeResolver, importX } from "eslint-plugin-import-x";

export default tseslint.config(
  { ignores: ["node_modules/**", ".sluice/**", "web/dist/**", "bench/results/**", "test-artifacts/**", "**/*.js", "**/*.mjs"] },
  ...tseslint.configs.recommendedTypeChecked,
  importX.flatConfigs.typescript,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    settings: {
      "import-x/extensions": [".ts", ".tsx", ".js"],
      "import-x/resolver-next": [createNodeResolver({ extensions: [".ts", ".tsx", ".js"] })],
      // Packages are never parsed for their exports (TypeScript checks those): PGlite's minified
      // bundles overflow the parser's stack, and a cycle can only run through our own files.
      "import-x/ignore": ["node_modules"],
    },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "import-x/no-cycle": ["error", { maxDepth: 10 }],
    },
  },
);
