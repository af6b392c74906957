// The image and frame the viewer shows: the series strip, the image and
// frame sliders, the arrow keys and cine set it; a draft is made from it and
// "What the model saw" shows it. One place, so the draft is always of what
// the clinician is looking at.
import type { StudyView } from "./reading";

export interface OnScreen {
  /** The image's place in the study (`StudyView.images`). */
  image: number;
  /** Its frame, from 0. */
  frame: number;
}

export const onScreen = $state<OnScreen>({ image: 0, frame: 0 });

/** Shows image `image` of the study at frame `frame`. */
export function show(image: number, frame = 0) {
  onScreen.image = image;
  onScreen.frame = frame;
}

/** The series (its place in `StudyView.series`) that holds image `image`. */
export function seriesOf(study: StudyView, image: number): number {
  const at = study.series.findIndex((s) => s.images.includes(image));
  return at < 0 ? 0 : at;
}

/**
 * One step through what is on screen, as ↑/↓ and cine do: through the frames
 * of a multi-frame image, else through the images of its series. `wrap` goes
 * round from the last to the first (cine); without it the ends stop.
 */
export function step(study: StudyView, at: OnScreen, delta: number, wrap = false): OnScreen {
  const image = study.images[at.image];
  if (!image) return at;
  const clamp = (n: number, count: number) => (wrap ? ((n % count) + count) % count : Math.min(count - 1, Math.max(0, n)));
  if (image.frames > 1) return { image: at.image, frame: clamp(at.frame + delta, image.frames) };
  const series = study.series[seriesOf(study, at.image)];
  if (!series || series.images.length < 2) return at;
  const i = series.images.indexOf(at.image);
  return { image: series.images[clamp(i + delta, series.images.length)], frame: 0 };
}

/** How many steps `step` can take on screen now (frames, or images of the series). */
export function stepsOf(study: StudyView, at: OnScreen): number {
  const image = study.images[at.image];
  if (!image) return 1;
  if (image.frames > 1) return image.frames;
  return study.series[seriesOf(study, at.image)]?.images.length ?? 1;
}
