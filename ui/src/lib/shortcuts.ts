// Every keyboard shortcut of the window, in one list: the overlay (`?`) shows
// this list, and a test checks that each key listed for the viewer acts.

export interface Shortcut {
  keys: string;
  action: string;
  group: "Anywhere" | "Image" | "Draft";
}

export const SHORTCUTS: Shortcut[] = [
  { group: "Anywhere", keys: "Ctrl+O", action: "Open an image or a folder" },
  { group: "Anywhere", keys: "?", action: "Show or hide this list" },
  { group: "Anywhere", keys: "Esc", action: "Close this list, a dialog or the review" },
  { group: "Anywhere", keys: "Tab / Shift+Tab", action: "Move between controls (every button is reachable)" },
  { group: "Image", keys: "1 – 9", action: "Window presets (the file's, Auto, …)" },
  { group: "Image", keys: "I", action: "Invert" },
  { group: "Image", keys: "T", action: "Turn (rotate) 90°" },
  { group: "Image", keys: "H", action: "Flip horizontally" },
  { group: "Image", keys: "F", action: "Fit to the window" },
  { group: "Image", keys: "Z", action: "One image pixel per screen pixel (1:1)" },
  { group: "Image", keys: "R", action: "Reset window, zoom, pan, rotation and flip" },
  { group: "Image", keys: "↑ / ↓, PageUp / PageDown", action: "Previous / next frame (or image of the series)" },
  { group: "Image", keys: "C", action: "Play or pause cine" },
  { group: "Image", keys: "[ / ]", action: "Previous / next series" },
  { group: "Image", keys: "L", action: "Measure a length (click two points)" },
  { group: "Image", keys: "A", action: "Measure an angle (click three points, the vertex second)" },
  { group: "Image", keys: "Drag · right-drag · wheel", action: "Window/level · pan · zoom (mouse)" },
  { group: "Draft", keys: "Ctrl+Enter", action: "Draft a report" },
  { group: "Draft", keys: "Esc", action: "Stop the draft being written" },
];

/** A key press that types into a field is not a shortcut. */
export function typing(e: KeyboardEvent): boolean {
  const t = e.target as HTMLElement | null;
  return !!t && (["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName) || t.isContentEditable);
}
