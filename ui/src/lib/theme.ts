// Light and dark: the window follows the OS preference ("auto") unless the
// clinician picks one; the choice is kept in this computer's web storage
// (a display preference, not clinical data). The image area stays dark in
// both (app.css re-declares the dark palette on it).

export type ThemeChoice = "auto" | "light" | "dark";
export type Theme = "light" | "dark";

const KEY = "medgemma-desk.theme";
const ORDER: ThemeChoice[] = ["auto", "light", "dark"];

export function resolve(choice: ThemeChoice, osPrefersLight: boolean): Theme {
  return choice === "auto" ? (osPrefersLight ? "light" : "dark") : choice;
}

/** The choice after this one: Auto → Light → Dark → Auto. */
export function next(choice: ThemeChoice): ThemeChoice {
  return ORDER[(ORDER.indexOf(choice) + 1) % ORDER.length];
}

export function parseChoice(stored: string | null | undefined): ThemeChoice {
  return ORDER.includes(stored as ThemeChoice) ? (stored as ThemeChoice) : "auto";
}

export function label(choice: ThemeChoice, theme: Theme): string {
  const name = theme === "light" ? "light" : "dark";
  return choice === "auto" ? `Theme: auto (${name})` : `Theme: ${name}`;
}

function storage(): Storage | null {
  try {
    return globalThis.localStorage ?? null;
  } catch {
    return null;
  }
}

function prefersLight(): boolean {
  return globalThis.matchMedia?.("(prefers-color-scheme: light)").matches ?? false;
}

export function loadChoice(): ThemeChoice {
  return parseChoice(storage()?.getItem(KEY));
}

/** Sets `data-theme` on the document (what app.css keys on) and keeps the choice. */
export function apply(choice: ThemeChoice): Theme {
  const theme = resolve(choice, prefersLight());
  document.documentElement.dataset.theme = theme;
  document.documentElement.dataset.themeChoice = choice;
  storage()?.setItem(KEY, choice);
  return theme;
}

/** Applies the stored choice and follows the OS while it is "auto". */
export function start(onChange?: (choice: ThemeChoice, theme: Theme) => void): void {
  const media = globalThis.matchMedia?.("(prefers-color-scheme: light)");
  const refresh = () => {
    const choice = loadChoice();
    onChange?.(choice, apply(choice));
  };
  media?.addEventListener?.("change", refresh);
  refresh();
}
