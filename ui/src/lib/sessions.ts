// Sessions as the Rust store keeps them: listed and searched as the clinician
// types, opened from the sidebar, saved as the clinician writes.
import { listen, type UnlistenFn } from "@tauri-apps/api/event";
import { call } from "./ipc";
import type { Measurement } from "./measure";
import type { ReadingSnapshot } from "./reading";

export type SessionStatus = "open" | "drafted" | "preliminary" | "final";

export interface SessionSummary {
  id: number;
  title: string;
  created_at: string;
  updated_at: string;
  status: SessionStatus;
}

export interface SessionPage {
  sessions: SessionSummary[];
  total: number;
}

export interface Notes {
  indication: string;
  history: string;
  comparison: string;
  free_text: string;
}

export interface Draft {
  id: number;
  created_at: string;
  model_id: string;
  device: string;
  quantization: string;
  seed: number;
  generated_tokens: number;
  stop_reason: string;
  text: string;
  template: string;
  question: string | null;
  error: string | null;
  params: { temperature?: number; top_p?: number | null; top_k?: number | null; repetition_penalty?: number; max_new_tokens?: number };
  prompt_tokens: number;
  /** For a re-run: the draft it made again, and whether it came out the same. */
  rerun_of?: number | null;
  rerun_verdict?: string | null;
  /** MedGemma 1.5's thinking, kept apart from the text. */
  thinking?: string | null;
  /** sha256 of the pixels the model saw (kept with the draft, at the model's input size). */
  model_input_sha256?: string | null;
  /** Which of the session's images, and which frame, the model saw (empty: the first image's first frame, or no image). */
  views?: DraftView[];
}

export interface DraftView {
  image_sha256: string;
  position: number;
  frame: number;
}

/**
 * What a draft's model saw, in words for its meta line: "image 2 of 3
 * (PA.dcm), frame 5 of 30". Null when the session has one single-frame image
 * (nothing to tell apart) or the draft saw no image.
 */
export function viewLabel(d: Draft, images: SessionDetail["images"]): string | null {
  const v = d.views?.[0];
  if (!v) return null;
  const image = images.find((i) => i.position === v.position);
  const frames = image?.tags?.frames ?? 1;
  if (images.length < 2 && frames < 2) return null;
  const parts: string[] = [];
  if (images.length > 1) parts.push(`image ${v.position + 1} of ${images.length}${image?.tags?.file_name ? ` (${image.tags.file_name})` : ""}`);
  if (frames > 1) parts.push(`frame ${v.frame + 1} of ${frames}`);
  return parts.join(", ");
}

export type ReportStatus = "draft" | "preliminary" | "final";

export interface Report {
  id: number;
  version: number;
  text: string;
  status: ReportStatus;
  signed_at: string | null;
  created_at: string;
  addendum_of: number | null;
  from_draft: number | null;
}

export interface SessionDetail extends SessionSummary {
  notes: Notes;
  images: { sha256: string; position: number; byte_size: number; tags?: { file_name?: string; frames?: number } }[];
  drafts: Draft[];
  reports: Report[];
  /** Lengths and angles drawn on the session's images. */
  measurements?: Measurement[];
}

export interface StoreStatus {
  available: boolean;
  problem: string | null;
  notice: string | null;
  lastError: string | null;
  /** How the store is protected at rest, in words (once it is open). */
  protection?: string | null;
  encrypted?: boolean;
  /** The store waits for a passphrase: "new" (set one, or keep it unencrypted) or "existing". */
  passphrase?: "new" | "existing" | null;
}

export interface SessionState {
  current: SessionDetail | null;
  store: StoreStatus;
}

export const emptyNotes = (): Notes => ({ indication: "", history: "", comparison: "", free_text: "" });

export const sessionState = () => call<SessionState>("session_state");
export const listSessions = (query: string, limit = 200) => call<SessionPage>("sessions_list", { query, limit });
export const openSession = (id: number) => call<ReadingSnapshot>("session_open", { id });
export const saveNotes = (id: number, notes: Notes) => call<void>("session_save_notes", { id, notes });
export const saveReport = (id: number, text: string, fromDraft: number | null = null) =>
  call<Report>("session_save_report", { id, text, fromDraft });
export const exportReport = (sessionId: number, format: "markdown" | "fhir" | "pdf") =>
  call<string | null>("report_export", { sessionId, format });
export const signReport = (id: number, status: "preliminary" | "final") => call<Report>("session_sign", { id, status });
export const deleteSession = (id: number) => call<void>("session_delete", { id });
export const dismissStoreNotice = () => call<void>("dismiss_store_notice");

/** Another session of the same patient (found by a hash of the Patient ID). */
export interface Prior {
  id: number;
  title: string;
  created_at: string;
  status: SessionStatus;
  /** The newest signed report's text, and when it was signed. */
  report: string | null;
  signed_at: string | null;
}

export const sessionPriors = (id: number) => call<Prior[]>("session_priors", { id });

/**
 * A prior's signed report as the comparison the draft's prompt reads:
 * "CR CHEST PA · 2024-03-01 (signed 2024-03-02): No acute abnormality." —
 * its IMPRESSION when it has one (what a comparison quotes), else the text.
 */
export function comparisonText(p: Prior): string | null {
  if (!p.report) return null;
  const signed = p.signed_at ? ` (signed ${p.signed_at.slice(0, 10)})` : "";
  return `${p.title}${signed}: ${impressionOf(p.report)}`;
}

/** A report's IMPRESSION section on one line, or its whole text when it has none. */
export function impressionOf(report: string): string {
  const impression = /IMPRESSION:?\s*([\s\S]*?)(?:\n\s*[A-Z][A-Z ]{2,}:|$)/.exec(report);
  return (impression?.[1] ?? report).replace(/\s+/g, " ").trim();
}
/** A passphrase for the store, or `null`: keep a new store unencrypted. */
export const unlockStore = (passphrase: string | null) => call<StoreStatus>("store_unlock", { passphrase });

/** Encrypts a store that is not encrypted, its key in the system keyring (or from `passphrase`). */
export const encryptStore = (passphrase: string | null = null) => call<StoreStatus>("store_encrypt", { passphrase });

/** Why a new passphrase cannot be used yet, or null when it can. */
export function newPassphraseProblem(passphrase: string, repeated: string, minChars = 8): string | null {
  if ([...passphrase].length < minChars) return `Use at least ${minChars} characters.`;
  if (passphrase !== repeated) return "The two passphrases are not the same.";
  return null;
}

export function onSessionsChanged(cb: () => void): Promise<UnlistenFn> {
  return listen("sessions-changed", () => cb());
}

/** The report the editor works on: the newest version, and the signed text before it. */
export function reportView(reports: Report[]): { working: Report | null; signed: Report[] } {
  const working = reports.length > 0 ? reports[reports.length - 1] : null;
  return { working, signed: reports.filter((r) => r.status !== "draft") };
}

/** "2026-11-29T11:06:41.123Z" as a short local date and time. */
export function shortTime(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
