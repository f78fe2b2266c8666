// useChat posts to /api/chat and resumes from /api/chat/:id/stream, both on the page's own
// origin: Vite forwards /api to Sluice (SLUICE_URL), so the browser needs no CORS, and Sluice's
// Content-Security-Policy (which allows only Sluice's own origin) never applies to this page.
// In production, serve the built files and Sluice behind one origin the same way (a reverse proxy).
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

const sluice = { "/api": { target: process.env.SLUICE_URL ?? "http://127.0.0.1:3000", changeOrigin: true } };

export default defineConfig({
  root: import.meta.dirname,
  plugins: [react()],
  server: { proxy: sluice },
  preview: { proxy: sluice },
});
