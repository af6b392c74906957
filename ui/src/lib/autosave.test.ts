import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Autosave, type SaveState } from "./autosave";

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

describe("autosave", () => {
  it("saves the latest value once typing pauses, within a second", async () => {
    const saved: string[] = [];
    const a = new Autosave<string>({ save: async (v) => void saved.push(v), delayMs: 600 });
    a.change("F");
    await vi.advanceTimersByTimeAsync(300);
    a.change("FI");
    a.change("FINDINGS");
    expect(saved).toEqual([]);
    await vi.advanceTimersByTimeAsync(600);
    expect(saved).toEqual(["FINDINGS"]);
    expect(a.state.kind).toBe("saved");
    expect(a.dirty).toBe(false);
  });

  it("keeps the text after a failed save and retries until it works", async () => {
    let fail = true;
    const saved: string[] = [];
    const states: SaveState["kind"][] = [];
    const a = new Autosave<string>({
      save: async (v) => {
        if (fail) throw { kind: "disk_full", message: "the disk is full" };
        saved.push(v);
      },
      delayMs: 100,
      retryMs: 1000,
      onState: (s) => states.push(s.kind),
    });
    a.change("IMPRESSION: effusion");
    await vi.advanceTimersByTimeAsync(100);
    expect(a.state).toEqual({ kind: "failed", message: "the disk is full" });
    expect(a.dirty).toBe(true);
    await vi.advanceTimersByTimeAsync(1000);
    expect(saved).toEqual([]);
    fail = false;
    await vi.advanceTimersByTimeAsync(1000);
    expect(saved).toEqual(["IMPRESSION: effusion"]);
    expect(a.state.kind).toBe("saved");
    expect(states).toContain("failed");
  });

  it("a newer edit during a failed save wins", async () => {
    let calls = 0;
    const saved: string[] = [];
    const a = new Autosave<string>({
      save: async (v) => {
        calls += 1;
        if (calls === 1) throw new Error("busy");
        saved.push(v);
      },
      delayMs: 50,
      retryMs: 500,
    });
    a.change("old");
    await vi.advanceTimersByTimeAsync(50);
    a.change("new");
    await vi.advanceTimersByTimeAsync(600);
    expect(saved).toEqual(["new"]);
  });

  it("flush saves at once", async () => {
    const saved: string[] = [];
    const a = new Autosave<string>({ save: async (v) => void saved.push(v), delayMs: 10_000 });
    a.change("x");
    await a.flush();
    expect(saved).toEqual(["x"]);
  });
});
