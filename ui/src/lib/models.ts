// The Models screen's calls: what is here, settings, unload, import (with
// progress over a Channel) and opt-in downloads (progress over a Channel).
import { Channel } from "@tauri-apps/api/core";
import { call } from "./ipc";

export interface FoundModel {
  id: string;
  path: string;
  source: string;
  format: string;
  dtype: string;
  sizeBytes: number;
  vision: boolean;
  missing: string[];
  catalogId: string | null;
  cpuNeedBytes: number | null;
  fitsCpu: boolean | null;
  verified: boolean;
}

export interface CatalogModel {
  id: string;
  repo: string;
  name: string;
  description: string;
  format: string;
  vision: boolean;
  gated: boolean;
  supported: boolean;
  need_gb: { cpu: number; gpu: number } | null;
}

export interface Settings {
  offlineLockdown: boolean;
  device: string;
  model: string | null;
}

export interface ModelsState {
  found: FoundModel[];
  catalog: CatalogModel[];
  modelsDir: string;
  active: string | null;
  loaded: string | null;
  settings: Settings;
  devices: string[];
  downloadsBuiltIn: boolean;
  downloading: boolean;
}

export type ImportEvent = { event: "progress"; file: string; done: number; size: number; totalDone: number; totalSize: number };

export interface Imported {
  model: FoundModel;
  sha256: string;
  verified: boolean | null;
}

export type DownloadUpdate =
  | { event: "progress"; line: { event: string; file?: string; done?: number; size?: number } }
  | { event: "finished" }
  | { event: "failed"; message: string }
  | { event: "cancelled" };

export const modelsState = () => call<ModelsState>("models_state");
export const saveSettings = (settings: Settings) => call<void>("settings_save", { settings });
export const unloadModel = () => call<void>("model_unload");
export const pickModelFolder = () => call<string | null>("model_pick_folder");
export const cancelDownload = () => call<void>("model_download_cancel");

export function importModel(path: string, link: boolean, onProgress: (e: ImportEvent) => void): Promise<Imported> {
  const onEvent = new Channel<ImportEvent>();
  onEvent.onmessage = onProgress;
  return call<Imported>("model_import", { path, link, onEvent });
}

export function downloadModel(model: string, token: string | null, onUpdate: (u: DownloadUpdate) => void): Promise<void> {
  const onEvent = new Channel<DownloadUpdate>();
  onEvent.onmessage = onUpdate;
  return call<void>("model_download", { model, token, onEvent });
}

/** "4.3 GB", "812 MB". */
export function size(bytes: number): string {
  return bytes >= 1e9 ? `${(bytes / 1e9).toFixed(1)} GB` : `${Math.max(1, Math.round(bytes / 1e6))} MB`;
}

/** Tells the rest of the window that the models or settings changed. */
export const MODELS_CHANGED = "medgemma-models-changed";
export const OPEN_MODELS = "medgemma-open-models";
