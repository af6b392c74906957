// Saves what the clinician types without a Save button: a change is written
// once typing pauses (debounce), within a second; a failed save keeps the text
// in memory and tries again until it works, so nothing typed is lost.

export type SaveState = { kind: "saved" } | { kind: "pending" } | { kind: "saving" } | { kind: "failed"; message: string };

export interface AutosaveOptions<T> {
  /** Writes the value; rejects with { message } when it could not. */
  save: (value: T) => Promise<unknown>;
  /** Quiet time before a save, in ms. */
  delayMs?: number;
  /** Time between retries after a failure, in ms. */
  retryMs?: number;
  onState?: (state: SaveState) => void;
}

export class Autosave<T> {
  private pending: { value: T } | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private running: Promise<void> | null = null;
  private readonly delayMs: number;
  private readonly retryMs: number;
  state: SaveState = { kind: "saved" };

  constructor(private readonly opts: AutosaveOptions<T>) {
    this.delayMs = opts.delayMs ?? 600;
    this.retryMs = opts.retryMs ?? 3000;
  }

  /** A new value to keep; the latest one wins. */
  change(value: T): void {
    this.pending = { value };
    this.setState({ kind: "pending" });
    this.arm(this.delayMs);
  }

  /** Whether something typed is not yet saved. */
  get dirty(): boolean {
    return this.pending !== null || this.running !== null;
  }

  /** Saves now (leaving a session, closing the window). */
  async flush(): Promise<void> {
    this.clearTimer();
    if (this.running) await this.running;
    if (this.pending) await this.run();
  }

  /** Stops timers; unsaved changes are dropped (only after a successful flush). */
  dispose(): void {
    this.clearTimer();
  }

  private arm(ms: number) {
    this.clearTimer();
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.run();
    }, ms);
  }

  private clearTimer() {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private async run(): Promise<void> {
    if (this.running) {
      // One save at a time; the newest value is saved after this one.
      await this.running;
      if (this.pending) return this.run();
      return;
    }
    const item = this.pending;
    if (!item) return;
    this.pending = null;
    this.setState({ kind: "saving" });
    this.running = (async () => {
      try {
        await this.opts.save(item.value);
        if (!this.pending) this.setState({ kind: "saved" });
      } catch (e) {
        // Keep the text: unless something newer was typed, retry this value.
        if (!this.pending) this.pending = item;
        const message = e && typeof e === "object" && "message" in e ? String(e.message) : String(e);
        this.setState({ kind: "failed", message });
        this.arm(this.retryMs);
      }
    })();
    await this.running;
    this.running = null;
    if (this.pending && this.state.kind !== "failed") this.arm(this.delayMs);
  }

  private setState(s: SaveState) {
    this.state = s;
    this.opts.onState?.(s);
  }
}
