// The study on screen, as Rust keeps it: opened by drops, the Open dialog or
// the command line. Pixels are fetched as raw bytes, never JSON arrays.
import { listen, type UnlistenFn } from "@tauri-apps/api/event";
import { call } from "./ipc";

export type VoiFunction = "LINEAR" | "LINEAR_EXACT" | "SIGMOID";

export interface ViewerWindow {
  center: number;
  width: number;
  function: VoiFunction;
  label: string;
}

export interface DicomWindow {
  center: number;
  width: number;
  function: VoiFunction;
  explanation: string | null;
}

export interface KeyTags {
  modality: string | null;
  view_position: string | null;
  body_part: string | null;
  study_date: string | null;
  series_description: string | null;
  rows: number;
  columns: number;
  pixel_spacing_mm: [number, number] | null;
  /** "Pixel Spacing" (in the patient) or "Imager Pixel Spacing" (at the detector). */
  pixel_spacing_attribute: "Pixel Spacing" | "Imager Pixel Spacing" | null;
  transfer_syntax: string | null;
  transfer_syntax_name: string | null;
  photometric_interpretation: string;
  bits_allocated: number;
  bits_stored: number;
  signed: boolean;
  frames: number;
  manufacturer: string | null;
}

export interface ImageView {
  fileName: string;
  rows: number;
  columns: number;
  frames: number;
  pixelFormat: "modality-f32" | "rgb8";
  monochrome1: boolean;
  windows: DicomWindow[];
  defaultWindow: ViewerWindow;
  range: [number, number];
  tags: KeyTags;
}

export interface SeriesView {
  number: number | null;
  description: string | null;
  modality: string | null;
  /** Places in `StudyView.images`, in instance order. */
  images: number[];
  /** Frames in all its images together. */
  frames: number;
}

export interface StudyView {
  source: string;
  images: ImageView[];
  series: SeriesView[];
}

/** "Series 2 · CR · PA chest": what the series strip calls a series. */
export function seriesLabel(s: SeriesView, place: number): string {
  const parts = [s.number !== null ? `Series ${s.number}` : `Series ${place + 1}`];
  if (s.modality) parts.push(s.modality);
  if (s.description) parts.push(s.description);
  return parts.join(" · ");
}

export interface ReadingSnapshot {
  study: StudyView | null;
  /** A prior (a stored session of the same patient) shown beside the study. */
  comparison?: { title: string; study: StudyView } | null;
  error: { kind: string; message: string } | null;
  loading: string | null;
}

export const readingState = () => call<ReadingSnapshot>("reading_state");
export const openDialog = () => call<ReadingSnapshot>("open_dialog");
export const openPaths = (paths: string[]) => call<ReadingSnapshot>("open_paths", { paths });
export const framePixels = (image: number, frame: number, comparison = false) => call<ArrayBuffer>("frame_pixels", { image, frame, comparison });
/** Shows stored session `id` beside the study on screen (null closes it). */
export const compareSession = (id: number | null) => call<ReadingSnapshot>("session_compare", { id });

export function onReadingChanged(cb: () => void): Promise<UnlistenFn> {
  return listen("reading-changed", () => cb());
}

export function onDropHover(cb: (hovering: boolean) => void): Promise<UnlistenFn> {
  return listen<boolean>("drop-hover", (e) => cb(e.payload));
}

/** A model folder dropped on the window (its path), for the Models screen. */
export function onModelFolderDropped(cb: (path: string) => void): Promise<UnlistenFn> {
  return listen<string>("model-folder-dropped", (e) => cb(e.payload));
}
