/**
 * Work on a long list (hundreds of table rows) done a slice at a time. One task that builds
 * all of a 641-block report's rows, and the style and layout the browser then owes them,
 * holds the page for hundreds of milliseconds; between slices it draws frames and answers input.
 */

/** Where a job gets the time and the next task from; the page passes its own, tests a fake. */
export interface SliceScheduler {
  /** Milliseconds, monotonic. */
  now(): number;
  /** Runs `slice` in a later task of its own; returns a function that cancels it. */
  later(slice: () => void): () => void;
}

/** Time a slice may take: well under a frame, so the frame also has time for the rows' style and layout. */
export const SLICE_BUDGET_MS = 8;

/** Runs step(0) … step(count − 1) in order, each slice doing steps until its budget is spent (at least one step). */
export class SlicedJob {
  private next = 0;
  private cancelLater: (() => void) | undefined;

  constructor(
    private readonly count: number,
    private readonly step: (i: number) => void,
    private readonly scheduler: SliceScheduler,
    private readonly budgetMs = SLICE_BUDGET_MS,
  ) {}

  get done(): boolean {
    return this.next >= this.count;
  }

  /** Runs the first slice now and schedules the rest. */
  start(): this {
    this.slice();
    return this;
  }

  /** Runs all the steps left now, for an action that needs the whole list. */
  finish(): void {
    this.stop();
    while (!this.done) this.step(this.next++);
  }

  /** Drops the steps left (the list was replaced). */
  cancel(): void {
    this.stop();
    this.next = this.count;
  }

  private stop(): void {
    this.cancelLater?.();
    this.cancelLater = undefined;
  }

  private slice(): void {
    this.cancelLater = undefined;
    const end = this.scheduler.now() + this.budgetMs;
    while (!this.done) {
      this.step(this.next++);
      if (this.scheduler.now() >= end) break;
    }
    if (!this.done) this.cancelLater = this.scheduler.later(() => this.slice());
  }
}
