import { defineConfig } from "drizzle-kit";

// Used only by `npm run db:generate` to write SQL migrations from src/storage/schema.ts.
export default defineConfig({
  dialect: "postgresql",
  schema: "./src/storage/schema.ts",
  out: "./src/storage/migrations",
});
