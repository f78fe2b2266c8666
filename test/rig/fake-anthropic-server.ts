// Kept only for the src/ and bench/ files that still import this path: they belong to other owners (issue 14).
// Import from test/support/providers/fake-anthropic-server.ts instead; this file goes once they do.
export * from "../support/providers/fake-anthropic-server.ts";
