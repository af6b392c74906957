import { afterEach, describe, expect, it, vi } from "vitest";
import { flushSync, mount, unmount } from "svelte";
import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import App from "./App.svelte";

afterEach(() => {
  clearMocks();
  document.body.innerHTML = "";
});

/** Waits until the selector shows up (the IPC answer arrives asynchronously). */
async function find(selector: string): Promise<Element> {
  return vi.waitFor(() => {
    flushSync();
    const el = document.querySelector(selector);
    if (!el) throw new Error(`${selector} not shown yet`);
    return el;
  });
}

describe("the first screen", () => {
  it("tells a new user what to do and shows the version from Rust", async () => {
    mockIPC((cmd) => {
      if (cmd === "app_info") return { name: "MedGemma Desk", version: "1.2.3", dataDir: "/data" };
      if (cmd === "reading_state") return { study: null, error: null, loading: null };
      if (cmd === "session_state") return { current: null, store: { available: true, problem: null, notice: null, lastError: null } };
      if (cmd === "sessions_list") return { sessions: [], total: 0 };
      return null;
    });
    const app = mount(App, { target: document.body });
    expect((await find("[data-testid=empty-state]")).textContent).toBe("Drop a chest X-ray here");
    expect(document.querySelector("nav")?.getAttribute("aria-labelledby")).toBe("sessions-heading");
    expect((await find("[data-testid=app-version]")).textContent).toBe("MedGemma Desk 1.2.3");
    expect((await find("[data-testid=sessions-empty]")).textContent).toContain("No sessions yet");
    unmount(app);
  });

  it("lists sessions with status badges and filters them as the clinician types", async () => {
    const queries: string[] = [];
    const all = [
      { id: 2, title: "CR CHEST PA", created_at: "2026-11-29T10:00:00.000Z", updated_at: "", status: "final" },
      { id: 1, title: "DX CHEST AP", created_at: "2026-11-28T10:00:00.000Z", updated_at: "", status: "drafted" },
    ];
    mockIPC((cmd, args) => {
      if (cmd === "app_info") return { name: "MedGemma Desk", version: "1", dataDir: "/d" };
      if (cmd === "reading_state") return { study: null, error: null, loading: null };
      if (cmd === "session_state") return { current: null, store: { available: true, problem: null, notice: null, lastError: null } };
      if (cmd === "sessions_list") {
        const q = String((args as { query: string }).query);
        queries.push(q);
        const sessions = q ? all.filter((s) => s.title.toLowerCase().includes(q.toLowerCase())) : all;
        return { sessions, total: sessions.length };
      }
      return null;
    });
    const app = mount(App, { target: document.body });
    await find("[data-testid=session-item]");
    const badges = () => [...document.querySelectorAll("[data-testid=session-status]")].map((b) => b.textContent);
    expect(badges()).toEqual(["Final", "AI draft"]);
    const search = document.querySelector("[data-testid=session-search]") as HTMLInputElement;
    search.value = "AP";
    search.dispatchEvent(new Event("input", { bubbles: true }));
    await vi.waitFor(() => {
      flushSync();
      expect(document.querySelectorAll("[data-testid=session-item]").length).toBe(1);
    });
    expect(queries).toContain("AP");
    unmount(app);
  });

  it("shows a restored-backup notice and a store that cannot be used", async () => {
    mockIPC((cmd) => {
      if (cmd === "session_state")
        return { current: null, store: { available: false, problem: "the data folder is read-only", notice: null, lastError: null } };
      if (cmd === "reading_state") return { study: null, error: null, loading: null };
      if (cmd === "app_info") return { name: "MedGemma Desk", version: "1", dataDir: "/d" };
      return null;
    });
    const app = mount(App, { target: document.body });
    expect((await find("[data-testid=store-problem]")).textContent).toContain("read-only");
    unmount(app);
  });

  it("says so when the app core does not answer", async () => {
    mockIPC(() => {
      throw { kind: "internal", message: "no state" };
    });
    const app = mount(App, { target: document.body });
    expect((await find("[role=alert]")).textContent).toContain("no state");
    unmount(app);
  });
});
