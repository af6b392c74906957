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
    mockIPC(() => ({ name: "MedGemma Desk", version: "1.2.3", dataDir: "/data" }));
    const app = mount(App, { target: document.body });
    expect((await find("[data-testid=empty-state]")).textContent).toBe("Drop a chest X-ray here");
    expect(document.querySelector("nav")?.getAttribute("aria-labelledby")).toBe("sessions-heading");
    expect((await find("[data-testid=app-version]")).textContent).toBe("MedGemma Desk 1.2.3");
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
