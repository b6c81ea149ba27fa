import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// The dev server forwards API and WebSocket traffic to a local Gorax API (`gorax up`).
const api = process.env.GORAX_API ?? "http://127.0.0.1:8080";

export default defineConfig({
  plugins: [react()],
  server: {
    port: 5173,
    proxy: {
      "/api": { target: api, ws: true, changeOrigin: false },
      "/webhook": { target: api },
    },
  },
  build: { outDir: "dist", sourcemap: false, chunkSizeWarningLimit: 1500 },
  test: { environment: "node", include: ["src/**/*.test.ts"] },
});
