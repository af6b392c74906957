// Drafting: templates and models the app knows, a draft streamed over a
// Tauri Channel as typed events, Stop, and the review of a draft.
import { Channel } from "@tauri-apps/api/core";
import { call } from "./ipc";
import type { OnScreen } from "./onscreen.svelte";

export interface Template {
  id: string;
  name: string;
  description: string;
  sections: string[];
  max_tokens: number;
  temperature: number;
  needs_question: boolean;
}

export interface ModelEntry {
  id: string;
  path: string;
  vision: boolean;
}

export interface DraftingState {
  models: ModelEntry[];
  modelsDir: string;
  templates: Template[];
  templateProblems: string[];
  busy: boolean;
}

export type DraftEvent =
  | { event: "loading"; model: string }
  | { event: "started"; promptTokens: number; maxTokens: number; model: string; device: string }
  | { event: "token"; text: string }
  | {
      event: "finished";
      draftId: number;
      stopReason: string;
      generatedTokens: number;
      timeToFirstTokenMs: number;
      decodeTokS: number;
      totalMs: number;
      promptTokens: number;
      reusedPromptTokens: number;
      imageReused: boolean;
    }
  | { event: "failed"; message: string; draftId: number | null };

export type DraftMode = "first" | "regenerate" | "reproduce" | "followUp";

export interface DraftStart {
  sessionId: number;
  templateId: string;
  mode: DraftMode;
  baseDraftId?: number | null;
  question?: string | null;
  /** The advanced settings the clinician changed; the rest is the template's. */
  sampling?: SamplingChoice | null;
  /** The image and frame on screen, which the draft is made from. */
  onScreen?: OnScreen | null;
}

/** Sampling chosen by hand; a value left out is the template's (greedy by default). */
export interface SamplingChoice {
  temperature?: number | null;
  topP?: number | null;
  topK?: number | null;
  repetitionPenalty?: number | null;
  seed?: number | null;
}

export interface Review {
  draftText: string;
  reportText: string;
  changes: { kind: "same" | "added" | "removed"; text: string }[];
  sentences: { text: string; origin: "ai" | "edited" | "clinician" }[];
  /** The origins are the ones fixed when the report was signed. */
  frozen: boolean;
}

export const draftingState = () => call<DraftingState>("drafting_state");
export const stopDraft = () => call<void>("draft_stop");
/** PNG bytes of what the model saw: kept with draft `draftId`, or (null, or a
 *  draft that kept none) the image on screen as the drafting model sees it now. */
export const modelInputImage = (draftId: number | null, onScreen: OnScreen | null = null) =>
  call<ArrayBuffer>("model_input_image", { draftId, onScreen });
export const reviewDraft = (sessionId: number, draftId: number) => call<Review>("draft_review", { sessionId, draftId });

/** Starts a draft; `onEvent` hears every event until `finished` or `failed`. */
export function startDraft(args: DraftStart, onEvent: (e: DraftEvent) => void): Promise<void> {
  const channel = new Channel<DraftEvent>();
  channel.onmessage = onEvent;
  return call<void>("draft_start", {
    ...args,
    baseDraftId: args.baseDraftId ?? null,
    question: args.question ?? null,
    sampling: args.sampling ?? null,
    onScreen: args.onScreen ?? null,
    onEvent: channel,
  });
}

/** Words for a stop reason. */
export function stopLabel(reason: string): string {
  switch (reason) {
    case "end_of_turn":
      return "complete";
    case "max_tokens":
      return "stopped at the length limit";
    case "stopped":
      return "stopped by you";
    case "context_full":
      return "stopped: the model's context is full";
    case "error":
      return "stopped by an error";
    default:
      return reason;
  }
}
