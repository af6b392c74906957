import { describe, expect, it } from "vitest";
import { onScreen, seriesOf, show, step, stepsOf } from "./onscreen.svelte";
import { seriesLabel, type ImageView, type SeriesView, type StudyView } from "./reading";

const image = (frames: number): ImageView =>
  ({ fileName: "x.dcm", rows: 2, columns: 2, frames, pixelFormat: "modality-f32", monochrome1: false, windows: [], range: [0, 1] }) as unknown as ImageView;
const series = (images: number[], frames = images.length): SeriesView => ({ number: null, description: null, modality: "MR", images, frames });

// Two series: a stack of three single-frame images (0, 2, 1 in instance
// order), then one 4-frame image.
const study: StudyView = {
  source: "/study",
  images: [image(1), image(1), image(1), image(4)],
  series: [series([0, 2, 1]), series([3], 4)],
};

describe("what is on screen", () => {
  it("steps through a stack in instance order and stops at its ends", () => {
    expect(step(study, { image: 0, frame: 0 }, 1)).toEqual({ image: 2, frame: 0 });
    expect(step(study, { image: 2, frame: 0 }, 1)).toEqual({ image: 1, frame: 0 });
    expect(step(study, { image: 1, frame: 0 }, 1)).toEqual({ image: 1, frame: 0 });
    expect(step(study, { image: 0, frame: 0 }, -1)).toEqual({ image: 0, frame: 0 });
    expect(stepsOf(study, { image: 2, frame: 0 })).toBe(3);
  });
  it("steps through the frames of a multi-frame image, and cine wraps round", () => {
    expect(step(study, { image: 3, frame: 2 }, 1)).toEqual({ image: 3, frame: 3 });
    expect(step(study, { image: 3, frame: 3 }, 1)).toEqual({ image: 3, frame: 3 });
    expect(step(study, { image: 3, frame: 3 }, 1, true)).toEqual({ image: 3, frame: 0 });
    expect(step(study, { image: 1, frame: 0 }, 1, true)).toEqual({ image: 0, frame: 0 });
    expect(stepsOf(study, { image: 3, frame: 0 })).toBe(4);
  });
  it("finds an image's series and is set in one place", () => {
    expect(seriesOf(study, 1)).toBe(0);
    expect(seriesOf(study, 3)).toBe(1);
    show(3, 2);
    expect({ ...onScreen }).toEqual({ image: 3, frame: 2 });
    show(1);
    expect({ ...onScreen }).toEqual({ image: 1, frame: 0 });
  });
  it("names a series by number, modality and description", () => {
    expect(seriesLabel({ number: 2, description: "PA chest", modality: "CR", images: [0], frames: 1 }, 0)).toBe("Series 2 · CR · PA chest");
    expect(seriesLabel({ number: null, description: null, modality: null, images: [0], frames: 1 }, 3)).toBe("Series 4");
  });
});
