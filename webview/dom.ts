import { nameBreakSegments } from './reportModel/format';
import type { SliceScheduler } from './reportModel/slicedJob';

/** Tiny element builder: keeps views declarative without a framework. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  el.append(...children);
  return el;
}

/** A file name or path that wraps only after its separators (a <wbr> after each), never mid-word. */
export function fileName(name: string): DocumentFragment {
  const out = document.createDocumentFragment();
  for (const segment of nameBreakSegments(name)) out.append(segment, document.createElement('wbr'));
  return out;
}

/** Runs `task` in a task of its own, once the page gets to it; returns a function that cancels it. */
export function inNextTask(task: () => void): () => void {
  const id = setTimeout(task, 0);
  return () => clearTimeout(id);
}

/** A slice of background work waits for the page to be idle, but no longer than this. */
const IDLE_SLICE_TIMEOUT_MS = 500;

/** Slices of work (see SlicedJob) run when the page is idle: what the user does and sees comes first. */
export const idleSlices: SliceScheduler = {
  now: () => performance.now(),
  later(slice) {
    const id = requestIdleCallback(slice, { timeout: IDLE_SLICE_TIMEOUT_MS });
    return () => cancelIdleCallback(id);
  },
};
