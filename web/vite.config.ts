// Builds the chat UI into web/dist, which the API serves at `/` (SPA fallback
// to index.html). Run from the repo root: `vite build --config web/vite.config.ts`.
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

const webRoot = import.meta.dirname;

export default defineConfig({
  root: webRoot,
  plugins: [react()],
  build: {
    outDir: `${webRoot}/dist`,
    emptyOutDir: true,
    sourcemap: true,
  },
  server: {
    // `vite --config web/vite.config.ts` for UI work against a running `sluice start`.
    proxy: { "/api": { target: process.env.SLUICE_API_ORIGIN ?? "http://127.0.0.1:3000", changeOrigin: false } },
  },
});
