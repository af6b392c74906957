import { describe, expect, it } from "vitest";
import { label, toImage, toScreen, value, type Screen } from "./measure";
import type { View } from "./gl";

const view = (v: Partial<View>): View => ({ zoom: 1, panX: 0, panY: 0, rotation: 0, flipH: false, flipV: false, ...v });

describe("screen and image points", () => {
  it("round-trips under every rotation and flip, zoom and pan", () => {
    for (const rotation of [0, 90, 180, 270] as const) {
      for (const flipH of [false, true]) {
        for (const flipV of [false, true]) {
          const s: Screen = { view: view({ rotation, flipH, flipV, panX: 13, panY: -7 }), zoom: 0.37, width: 800, height: 600, columns: 2614, rows: 3072 };
          const p: [number, number] = [100.25, 2000.5];
          const back = toImage(s, toScreen(s, p));
          expect(back[0]).toBeCloseTo(p[0], 9);
          expect(back[1]).toBeCloseTo(p[1], 9);
        }
      }
    }
  });
  it("puts the image centre at the canvas centre plus the pan, and turns clockwise", () => {
    const s: Screen = { view: view({ panX: 10, panY: 5 }), zoom: 2, width: 400, height: 300, columns: 100, rows: 50 };
    expect(toScreen(s, [50, 25])).toEqual([210, 155]);
    const turned: Screen = { ...s, view: view({ rotation: 90 }) };
    // The image's right edge, turned 90° clockwise, is at the bottom.
    expect(toScreen(turned, [100, 25])).toEqual([200, 250]);
    const flipped: Screen = { ...s, view: view({ flipH: true }) };
    expect(toScreen(flipped, [100, 25])).toEqual([100, 150]);
  });
});

describe("what a measurement reads", () => {
  const mm = { pixel_spacing_mm: [0.5, 0.25] as [number, number], pixel_spacing_attribute: "Pixel Spacing" as const };
  it("measures across columns and down rows with their own spacing", () => {
    expect(value("length", [[0, 0], [100, 0]], mm)).toBeCloseTo(25); // columns: 0.25 mm
    expect(value("length", [[0, 0], [0, 100]], mm)).toBeCloseTo(50); // rows: 0.5 mm
    expect(label("length", [[0, 0], [30, 40]], { pixel_spacing_mm: null, pixel_spacing_attribute: null })).toBe("50.0 px (uncalibrated)");
    expect(label("length", [[0, 0], [100, 0]], mm)).toBe("25.0 mm");
    expect(label("length", [[0, 0], [100, 0]], { ...mm, pixel_spacing_attribute: "Imager Pixel Spacing" })).toBe("25.0 mm at the detector");
  });
  it("measures an angle at its middle point, in the patient's proportions", () => {
    const iso = { pixel_spacing_mm: [0.14, 0.14] as [number, number], pixel_spacing_attribute: "Pixel Spacing" as const };
    expect(label("angle", [[0, 0], [10, 0], [10, 10]], iso)).toBe("90.0°");
    expect(label("angle", [[0, 0], [10, 10], [20, 0]], iso)).toBe("90.0°");
    // 45° in pixels is not 45° when rows are twice as far apart as columns.
    expect(value("angle", [[10, 0], [0, 0], [10, 10]], mm)).toBeCloseTo((Math.atan2(10 * 0.5, 10 * 0.25) * 180) / Math.PI);
  });
});
