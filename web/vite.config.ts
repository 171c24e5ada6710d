import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

/** In `npm run dev -w @meshwork/web`, RPCs go to the gateway (GATEWAY_URL, default http://127.0.0.1:8080). */
const gateway = process.env.GATEWAY_URL ?? "http://127.0.0.1:8080";

export default defineConfig({
  plugins: [react()],
  build: { outDir: "dist", emptyOutDir: true, sourcemap: false, target: "es2022", chunkSizeWarningLimit: 800 },
  server: { proxy: { "^/(shop|grpc)\\.": { target: gateway, changeOrigin: false } } },
});
