import { describe, expect, it } from 'vitest';
import { SlicedJob, type SliceScheduler } from '../../../webview/reportModel/slicedJob';

/** A scheduler whose clock moves only when a step says so and whose later tasks run when the test says. */
function fakeScheduler() {
  let time = 0;
  const queue: { run: () => void; cancelled: boolean }[] = [];
  const scheduler: SliceScheduler = {
    now: () => time,
    later(run) {
      const task = { run, cancelled: false };
      queue.push(task);
      return () => {
        task.cancelled = true;
      };
    },
  };
  return {
    scheduler,
    advance: (ms: number) => (time += ms),
    pending: () => queue.filter((t) => !t.cancelled).length,
    /** Runs the next task that was not cancelled; false when there is none. */
    runNext(): boolean {
      for (let task = queue.shift(); task; task = queue.shift()) {
        if (task.cancelled) continue;
        task.run();
        return true;
      }
      return false;
    },
  };
}

describe('a job done in slices', () => {
  it('does as many steps per slice as fit in the budget, in order, each slice a task of its own', () => {
    const fake = fakeScheduler();
    const done: number[] = [];
    const slices: number[][] = [];
    const job = new SlicedJob(
      10,
      (i) => {
        done.push(i);
        fake.advance(3);
      },
      fake.scheduler,
      8,
    );
    job.start();
    slices.push([...done]);
    while (fake.runNext()) slices.push(done.slice(slices.flat().length));
    // 3 ms a step against an 8 ms budget: three steps a slice (the third one ends past the budget).
    expect(slices).toEqual([[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]);
    expect(job.done).toBe(true);
    expect(fake.pending()).toBe(0);
  });

  it('makes progress with a step longer than the budget', () => {
    const fake = fakeScheduler();
    const done: number[] = [];
    new SlicedJob(3, (i) => (done.push(i), fake.advance(50)), fake.scheduler, 8).start();
    expect(done).toEqual([0]);
    fake.runNext();
    expect(done).toEqual([0, 1]);
  });

  it('schedules nothing when the first slice finishes the job, or when there is nothing to do', () => {
    const fake = fakeScheduler();
    const done: number[] = [];
    expect(new SlicedJob(4, (i) => done.push(i), fake.scheduler).start().done).toBe(true);
    expect(done).toEqual([0, 1, 2, 3]);
    expect(new SlicedJob(0, () => done.push(-1), fake.scheduler).start().done).toBe(true);
    expect(done).toEqual([0, 1, 2, 3]);
    expect(fake.pending()).toBe(0);
  });

  it('does what is left at once when asked to finish, and nothing more later', () => {
    const fake = fakeScheduler();
    const done: number[] = [];
    const job = new SlicedJob(6, (i) => (done.push(i), fake.advance(5)), fake.scheduler, 8).start();
    expect(done).toEqual([0, 1]);
    job.finish();
    expect(done).toEqual([0, 1, 2, 3, 4, 5]);
    expect(fake.pending()).toBe(0);
    job.finish();
    expect(done).toHaveLength(6);
  });

  it('stops when cancelled', () => {
    const fake = fakeScheduler();
    const done: number[] = [];
    const job = new SlicedJob(6, (i) => (done.push(i), fake.advance(5)), fake.scheduler, 8).start();
    job.cancel();
    expect(job.done).toBe(true);
    expect(fake.runNext()).toBe(false);
    job.finish();
    expect(done).toEqual([0, 1]);
  });
});
