// Kept only for the src/ and bench/ files that still import this path: they belong to other owners (issue 14).
// Import from test/support/streaming/sse-parser.ts instead; this file goes once they do.
export * from "../../support/streaming/sse-parser.ts";
