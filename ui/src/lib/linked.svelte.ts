// Linked zoom and pan between the study and the prior beside it: each viewer
// writes its view here when it changes and takes the other's, so both show
// the same part at the same scale. Values are compared before writing, so the
// two settle instead of echoing each other.
import type { View } from "./gl";

export const linked = $state<{ on: boolean; view: View | null; fitted: boolean; from: string }>({ on: false, view: null, fitted: true, from: "" });

/** Whether two views show the same (zoom, pan, rotation, flip). */
export function sameView(a: View | null, b: View | null): boolean {
  if (!a || !b) return a === b;
  return a.zoom === b.zoom && a.panX === b.panX && a.panY === b.panY && a.rotation === b.rotation && a.flipH === b.flipH && a.flipV === b.flipV;
}
