import { afterEach, describe, expect, it } from "vitest";
import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import { appInfo, toAppError, versionLabel } from "./ipc";

afterEach(() => clearMocks());

describe("appInfo", () => {
  it("asks Rust through the app_info command", async () => {
    const calls: string[] = [];
    mockIPC((cmd) => {
      calls.push(cmd);
      return { name: "MedGemma Desk", version: "9.8.7", dataDir: "/tmp/d" };
    });
    const info = await appInfo();
    expect(calls).toEqual(["app_info"]);
    expect(info.version).toBe("9.8.7");
  });

  it("turns a failed command into { kind, message }", async () => {
    mockIPC(() => {
      throw { kind: "store", message: "The data folder is full." };
    });
    await expect(appInfo()).rejects.toEqual({ kind: "store", message: "The data folder is full." });
  });
});

describe("toAppError", () => {
  it("keeps a message from a plain string", () => {
    expect(toAppError("boom")).toEqual({ kind: "internal", message: "boom" });
  });
});

describe("versionLabel", () => {
  it("joins name and version", () => {
    expect(versionLabel({ name: "MedGemma Desk", version: "0.1.0" })).toBe("MedGemma Desk 0.1.0");
  });
});
