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

export async function appInfo(): Promise<AppInfo> {
  try {
    return await invoke<AppInfo>("app_info");
  } catch (e) {
    throw toAppError(e);
  }
}

export function versionLabel(info: Pick<AppInfo, "name" | "version">): string {
  return `${info.name} ${info.version}`;
}
