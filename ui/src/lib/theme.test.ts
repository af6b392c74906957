import { describe, expect, it } from "vitest";
import { label, next, parseChoice, resolve } from "./theme";

describe("theme", () => {
  it("follows the OS on auto and the choice otherwise", () => {
    expect(resolve("auto", true)).toBe("light");
    expect(resolve("auto", false)).toBe("dark");
    expect(resolve("dark", true)).toBe("dark");
    expect(resolve("light", false)).toBe("light");
  });
  it("cycles auto, light, dark", () => {
    expect(next("auto")).toBe("light");
    expect(next("light")).toBe("dark");
    expect(next("dark")).toBe("auto");
  });
  it("reads an unknown stored value as auto", () => {
    expect(parseChoice("light")).toBe("light");
    expect(parseChoice("sepia")).toBe("auto");
    expect(parseChoice(null)).toBe("auto");
  });
  it("says what auto resolved to", () => {
    expect(label("auto", "light")).toBe("Theme: auto (light)");
    expect(label("dark", "dark")).toBe("Theme: dark");
  });
});
