/**
 * Pan and zoom of a graph pane as plain numbers. The pane moves and scales the whole
 * drawing with one CSS transform, so panning and zooming never re-render the nodes.
 */
import type { Rect } from './blockIndex';

export interface Viewport {
  /** The graph point shown at the pane's centre. */
  cx: number;
  cy: number;
  /** Screen pixels per graph unit. */
  scale: number;
}

export interface Size {
  width: number;
  height: number;
}

export const MAX_SCALE = 4;
/** Below this no label is legible; the pane hides text to keep big graphs fast. */
export const LABEL_MIN_SCALE = 0.35;
const FIT_MARGIN = 16;

/** The smallest zoom: the whole graph fits twice over, but never more zoomed in than 1:10. */
export function minScale(content: Size, pane: Size): number {
  return Math.min(0.5 * fitScale(content, pane), 0.1);
}

function fitScale(content: Size, pane: Size): number {
  const w = Math.max(1, pane.width - 2 * FIT_MARGIN);
  const h = Math.max(1, pane.height - 2 * FIT_MARGIN);
  return Math.min(MAX_SCALE, w / Math.max(1, content.width), h / Math.max(1, content.height));
}

/** The whole rectangle in view, centred. */
export function fitRect(rect: Rect, pane: Size): Viewport {
  return { cx: rect.x + rect.width / 2, cy: rect.y + rect.height / 2, scale: fitScale(rect, pane) };
}

/**
 * Where a pane starts: the whole graph when that is readable, otherwise the top of it at a
 * readable zoom — a 600-block chain fitted into one pane is a hairline.
 */
export function initialViewport(content: Size, pane: Size): Viewport {
  const all = fitRect({ x: 0, y: 0, ...content }, pane);
  if (all.scale >= 0.6) return all;
  const scale = Math.min(1, Math.max(all.scale, (pane.width - 2 * FIT_MARGIN) / Math.max(1, content.width)));
  return { cx: content.width / 2, cy: (pane.height / 2 - FIT_MARGIN) / scale, scale };
}

export function clampScale(scale: number, content: Size, pane: Size): number {
  return Math.min(MAX_SCALE, Math.max(minScale(content, pane), scale));
}

/** Zoom by `factor` keeping the graph point under the screen point (px, py) where it is. */
export function zoomAt(v: Viewport, factor: number, px: number, py: number, content: Size, pane: Size): Viewport {
  const scale = clampScale(v.scale * factor, content, pane);
  const gx = v.cx + (px - pane.width / 2) / v.scale;
  const gy = v.cy + (py - pane.height / 2) / v.scale;
  return { cx: gx - (px - pane.width / 2) / scale, cy: gy - (py - pane.height / 2) / scale, scale };
}

/** Drag by (dx, dy) screen pixels: the graph follows the pointer. */
export function panBy(v: Viewport, dx: number, dy: number): Viewport {
  return { cx: v.cx - dx / v.scale, cy: v.cy - dy / v.scale, scale: v.scale };
}

/** Centre on `rect`, zooming out only if it would not fit, and in only when its labels would be hidden. */
export function centerOn(v: Viewport, rect: Rect, pane: Size): Viewport {
  const fit = fitScale(rect, pane);
  const scale = v.scale > fit ? fit : v.scale < LABEL_MIN_SCALE ? Math.min(fit, 1) : v.scale;
  return { cx: rect.x + rect.width / 2, cy: rect.y + rect.height / 2, scale };
}

/**
 * The CSS transform (origin at the drawing's top-left) that shows viewport `v`: a graph
 * point p lands at p × scale + (x, y) pane pixels.
 */
export function paneTransformOf(v: Viewport, pane: Size): { x: number; y: number; scale: number } {
  return { x: pane.width / 2 - v.cx * v.scale, y: pane.height / 2 - v.cy * v.scale, scale: v.scale };
}

/** The part of the graph, in graph units, that viewport `v` shows in a pane of the given size. */
export function viewBoxOf(v: Viewport, pane: Size): Rect {
  const width = pane.width / v.scale;
  const height = pane.height / v.scale;
  return { x: v.cx - width / 2, y: v.cy - height / 2, width, height };
}

export function isViewport(value: unknown): value is Viewport {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return [v.cx, v.cy, v.scale].every((n) => typeof n === 'number' && Number.isFinite(n)) && (v.scale as number) > 0;
}
