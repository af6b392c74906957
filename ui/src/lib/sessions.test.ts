import { describe, expect, it } from "vitest";
import { comparisonText, newPassphraseProblem, viewLabel, type Draft, type DraftView } from "./sessions";

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

describe("what a draft's model saw, on its meta line", () => {
  const draft = (views: DraftView[]) => ({ views }) as unknown as Draft;
  const images = [
    { sha256: "a", position: 0, byte_size: 1, tags: { file_name: "PA.dcm", frames: 1 } },
    { sha256: "b", position: 1, byte_size: 1, tags: { file_name: "cine.dcm", frames: 30 } },
  ];
  it("names the image and frame when there is a choice", () => {
    expect(viewLabel(draft([{ image_sha256: "b", position: 1, frame: 4 }]), images)).toBe("image 2 of 2 (cine.dcm), frame 5 of 30");
    expect(viewLabel(draft([{ image_sha256: "a", position: 0, frame: 0 }]), images)).toBe("image 1 of 2 (PA.dcm)");
  });
  it("says nothing for one single-frame image or a draft without an image", () => {
    expect(viewLabel(draft([{ image_sha256: "a", position: 0, frame: 0 }]), images.slice(0, 1))).toBeNull();
    expect(viewLabel(draft([]), images)).toBeNull();
  });
});

describe("a prior's report as comparison text", () => {
  const prior = (report: string | null) => ({ id: 1, title: "CR CHEST PA · 2024-03-01", created_at: "2024-03-01T10:00:00Z", status: "final" as const, report, signed_at: "2024-03-02T08:00:00Z" });
  it("quotes the impression, with the study and when it was signed", () => {
    const text = "FINDINGS: Clear lungs.\nNo effusion.\nIMPRESSION: No acute\nabnormality.\nRECOMMENDATION: None.";
    expect(comparisonText(prior(text))).toBe("CR CHEST PA · 2024-03-01 (signed 2024-03-02): No acute abnormality.");
  });
  it("quotes the whole report when it has no impression, and nothing when unsigned", () => {
    expect(comparisonText(prior("Normal chest."))).toBe("CR CHEST PA · 2024-03-01 (signed 2024-03-02): Normal chest.");
    expect(comparisonText(prior(null))).toBeNull();
  });
});
