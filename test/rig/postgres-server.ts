// Kept only for the src/ and bench/ files that still import this path: they belong to other owners (issue 14).
// Import from test/support/servers/postgres-server.ts instead; this file goes once they do.
export * from "../support/servers/postgres-server.ts";
