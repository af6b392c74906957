/// <reference types="vitest/config" />
import { defineConfig } from "vite";
import { svelte } from "@sveltejs/vite-plugin-svelte";

// The UI is embedded in the binary (ui/dist). No CDN, no remote fonts: the app
// must work with no network, and the CSP allows only the app's own origin.
export default defineConfig(({ mode }) => ({
  plugins: [svelte()],
  clearScreen: false,
  server: { port: 5173, strictPort: true },
  build: {
    target: "safari16",
    outDir: "dist",
    emptyOutDir: true,
    // Inline nothing as data: URLs; keep every asset a file of our origin.
    assetsInlineLimit: 0,
  },
  // Component tests mount Svelte in jsdom: use its browser build.
  resolve: mode === "test" ? { conditions: ["browser"] } : undefined,
  test: {
    environment: "jsdom",
    include: ["src/**/*.test.ts"],
  },
}));
