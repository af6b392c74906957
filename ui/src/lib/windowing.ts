// Window/level as a reader works it: presets for chest work, and the mouse
// drag (horizontal = width, vertical = centre) scaled to the image's range.
import type { ImageView, ViewerWindow } from "./reading";

export interface Preset {
  key: string;
  label: string;
  window: ViewerWindow;
}

const HU_PRESETS: [string, string, number, number][] = [
  ["lung", "Lung", -600, 1500],
  ["mediastinum", "Mediastinum", 50, 350],
  ["bone", "Bone", 400, 1800],
];

/** Presets offered for an image: the file's own windows, HU windows on CT, auto. */
export function presets(img: ImageView): Preset[] {
  const out: Preset[] = [{ key: "default", label: "Default", window: img.defaultWindow }];
  img.windows.slice(1).forEach((w, i) => {
    out.push({
      key: `dicom-${i + 2}`,
      label: w.explanation || `Window ${i + 2}`,
      window: { center: w.center, width: w.width, function: w.function, label: w.explanation || `DICOM window ${i + 2}` },
    });
  });
  if (img.tags.modality === "CT") {
    for (const [key, label, center, width] of HU_PRESETS) {
      out.push({ key, label, window: { center, width, function: "LINEAR", label } });
    }
  }
  const [lo, hi] = img.range;
  out.push({
    key: "auto",
    label: "Auto",
    window: { center: (lo + hi) / 2, width: Math.max(hi - lo, 1), function: "LINEAR_EXACT", label: "full range" },
  });
  return out;
}

/** A new window after dragging by (dx, dy) screen pixels. */
export function dragWindow(w: ViewerWindow, dx: number, dy: number, range: [number, number], viewport: number): ViewerWindow {
  const span = Math.max(range[1] - range[0], 1);
  const perPixel = (span / Math.max(viewport, 1)) * 2;
  const minWidth = w.function === "LINEAR" ? 1 : 1e-3;
  return {
    ...w,
    width: Math.max(minWidth, w.width + dx * perPixel),
    center: w.center - dy * perPixel,
    label: "custom",
  };
}

/** Numbers as the overlay shows them: integers when whole, else one decimal. */
export function fmt(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}
