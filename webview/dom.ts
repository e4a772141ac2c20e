import { nameBreakSegments } from './reportModel/format';

/** Tiny element builder: keeps views declarative without a framework. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
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
