// The UI's only way to the Rust side: typed wrappers over Tauri commands.
// Errors from commands arrive as { kind, message }; anything else is wrapped.
import { invoke } from "@tauri-apps/api/core";

export interface AppInfo {
  name: string;
  version: string;
  dataDir: string;
}

export interface AppError {
  kind: string;
  message: string;
}

export function toAppError(e: unknown): AppError {
  if (e && typeof e === "object" && "message" in e) {
    const kind = "kind" in e && typeof e.kind === "string" ? e.kind : "internal";
    return { kind, message: String(e.message) };
  }
  return { kind: "internal", message: String(e) };
}

/** Invokes a command; a failure always arrives as an AppError. */
export async function call<T>(cmd: string, args?: Record<string, unknown>): Promise<T> {
  try {
    return await invoke<T>(cmd, args);
  } catch (e) {
    throw toAppError(e);
  }
}

export const appInfo = () => call<AppInfo>("app_info");

export function versionLabel(info: Pick<AppInfo, "name" | "version">): string {
  return `${info.name} ${info.version}`;
}
