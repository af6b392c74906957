import { describe, expect, it } from "vitest";
import { dragWindow, fmt, presets } from "./windowing";
import type { ImageView } from "./reading";

function image(modality: string | null): ImageView {
  return {
    fileName: "x.dcm",
    rows: 10,
    columns: 10,
    frames: 1,
    pixelFormat: "modality-f32",
    monochrome1: false,
    windows: [
      { center: 40, width: 400, function: "LINEAR", explanation: "WINDOW1" },
      { center: 300, width: 1500, function: "LINEAR", explanation: "BONE" },
    ],
    defaultWindow: { center: 40, width: 400, function: "LINEAR", label: "WINDOW1" },
    range: [-1024, 3071],
    tags: { modality } as ImageView["tags"],
  };
}

describe("presets", () => {
  it("offer the file's windows, HU windows on CT, and auto", () => {
    const keys = presets(image("CT")).map((p) => p.key);
    expect(keys).toEqual(["default", "dicom-2", "lung", "mediastinum", "bone", "auto"]);
  });
  it("do not offer HU windows on radiographs", () => {
    expect(presets(image("CR")).map((p) => p.key)).toEqual(["default", "dicom-2", "auto"]);
  });
  it("auto spans the image's range", () => {
    const auto = presets(image("CR")).at(-1)!.window;
    expect([auto.center, auto.width]).toEqual([1023.5, 4095]);
  });
});

describe("dragWindow", () => {
  const w = image("CT").defaultWindow;
  it("widens when dragged right and raises the centre when dragged up", () => {
    const d = dragWindow(w, 10, -10, [-1024, 3071], 1000);
    expect(d.width).toBeGreaterThan(w.width);
    expect(d.center).toBeGreaterThan(w.center);
  });
  it("never goes below the minimum width", () => {
    expect(dragWindow(w, -100000, 0, [0, 10], 10).width).toBe(1);
  });
});

describe("fmt", () => {
  it("keeps integers whole", () => {
    expect(fmt(550)).toBe("550");
    expect(fmt(1023.5)).toBe("1023.5");
  });
});
