import { describe, expect, it } from "vitest";
import { newPassphraseProblem } from "./sessions";

describe("a new store's passphrase", () => {
  it("needs 8 characters, counted as characters, not bytes", () => {
    expect(newPassphraseProblem("seven77", "seven77")).toBe("Use at least 8 characters.");
    expect(newPassphraseProblem("ééééééé", "ééééééé")).toBe("Use at least 8 characters.");
    expect(newPassphraseProblem("éééééééé", "éééééééé")).toBeNull();
  });
  it("must be typed the same twice", () => {
    expect(newPassphraseProblem("Kestrel meadow 42", "Kestrel meadow 24")).toBe("The two passphrases are not the same.");
    expect(newPassphraseProblem("Kestrel meadow 42", "Kestrel meadow 42")).toBeNull();
  });
});
