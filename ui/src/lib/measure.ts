// Measuring on the image: where a point on the screen is in the image (and
// back), and what a length or an angle drawn there measures. Points are kept
// in image pixel coordinates (column, row from the top-left corner), so a
// measurement stays put under zoom, pan, rotation and flip; its value comes
// from the points and the spacing the file states, and says which spacing.
import { call } from "./ipc";
import type { KeyTags } from "./reading";
import type { View } from "./gl";

export type MeasureKind = "length" | "angle";
export type Point = [number, number];

export interface Measurement {
  id: number;
  created_at: string;
  image_sha256: string;
  frame: number;
  kind: MeasureKind;
  points: Point[];
}

/** The view as the screen shows it: zoom in CSS pixels per image pixel, pan in CSS pixels. */
export interface Screen {
  view: View;
  zoom: number;
  width: number; // the canvas, CSS pixels
  height: number;
  columns: number; // the image
  rows: number;
}

// The viewer draws clip = S·R·F·p + T (lib/gl.ts), p in image pixels from the
// image's centre: on the screen that is centre + zoom·R·F·p + pan.
function turn(view: View): { cos: number; sin: number; fx: number; fy: number } {
  const rad = (view.rotation * Math.PI) / 180;
  return { cos: Math.round(Math.cos(rad)), sin: Math.round(Math.sin(rad)), fx: view.flipH ? -1 : 1, fy: view.flipV ? -1 : 1 };
}

/** Where image point `p` is on the canvas (CSS pixels from its top-left). */
export function toScreen(s: Screen, p: Point): Point {
  const { cos, sin, fx, fy } = turn(s.view);
  const px = (p[0] - s.columns / 2) * fx;
  const py = (p[1] - s.rows / 2) * fy;
  return [s.width / 2 + s.view.panX + s.zoom * (cos * px - sin * py), s.height / 2 + s.view.panY + s.zoom * (sin * px + cos * py)];
}

/** The image point under canvas point `q` (the inverse of `toScreen`). */
export function toImage(s: Screen, q: Point): Point {
  const { cos, sin, fx, fy } = turn(s.view);
  const dx = (q[0] - s.width / 2 - s.view.panX) / s.zoom;
  const dy = (q[1] - s.height / 2 - s.view.panY) / s.zoom;
  return [fx * (cos * dx + sin * dy) + s.columns / 2, fy * (-sin * dx + cos * dy) + s.rows / 2];
}

/** A point's offset from another in mm (with spacing) or pixels. */
function offset(a: Point, b: Point, tags: Pick<KeyTags, "pixel_spacing_mm">): Point {
  // Pixel Spacing is (row spacing, column spacing): between rows (down), between columns (across).
  const [rowMm, colMm] = tags.pixel_spacing_mm ?? [1, 1];
  return [(b[0] - a[0]) * colMm, (b[1] - a[1]) * rowMm];
}

/** The value of a measurement: mm or px for a length, degrees for an angle. */
export function value(kind: MeasureKind, points: Point[], tags: Pick<KeyTags, "pixel_spacing_mm">): number {
  if (kind === "length") {
    const [dx, dy] = offset(points[0], points[1], tags);
    return Math.hypot(dx, dy);
  }
  const [a, b] = [offset(points[1], points[0], tags), offset(points[1], points[2], tags)];
  const cross = a[0] * b[1] - a[1] * b[0];
  const dot = a[0] * b[0] + a[1] * b[1];
  return (Math.abs(Math.atan2(cross, dot)) * 180) / Math.PI;
}

/**
 * What a measurement reads: "42.3 mm", "42.3 mm at the detector" (Imager
 * Pixel Spacing: a distance in the patient is smaller by the magnification),
 * "123.4 px (uncalibrated)" where the file states no spacing, "37.5°".
 */
export function label(kind: MeasureKind, points: Point[], tags: Pick<KeyTags, "pixel_spacing_mm" | "pixel_spacing_attribute">): string {
  const v = value(kind, points, tags);
  if (kind === "angle") return `${v.toFixed(1)}°`;
  if (!tags.pixel_spacing_mm) return `${v.toFixed(1)} px (uncalibrated)`;
  return tags.pixel_spacing_attribute === "Imager Pixel Spacing" ? `${v.toFixed(1)} mm at the detector` : `${v.toFixed(1)} mm`;
}

/** How many points a kind needs. */
export const pointsFor = (kind: MeasureKind) => (kind === "length" ? 2 : 3);

export const addMeasurement = (sessionId: number, image: number, frame: number, kind: MeasureKind, points: Point[]) =>
  call<number>("measurement_add", { sessionId, image, frame, kind, points });
export const deleteMeasurement = (sessionId: number, id: number) => call<boolean>("measurement_delete", { sessionId, id });
