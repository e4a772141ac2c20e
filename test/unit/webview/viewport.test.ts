import { describe, expect, it } from 'vitest';
import {
  centerOn,
  clampScale,
  fitRect,
  initialViewport,
  isViewport,
  LABEL_MIN_SCALE,
  MAX_SCALE,
  minScale,
  panBy,
  paneTransformOf,
  viewBoxOf,
  zoomAt,
} from '../../../webview/reportModel/viewport';

const pane = { width: 400, height: 300 };

describe('graph pane viewport', () => {
  it('maps a viewport to the viewBox that shows it', () => {
    expect(viewBoxOf({ cx: 100, cy: 50, scale: 2 }, pane)).toEqual({ x: 0, y: -25, width: 200, height: 150 });
  });

  it('places the drawing with a transform that shows the same part of the graph', () => {
    const v = { cx: 100, cy: 50, scale: 2 };
    const t = paneTransformOf(v, pane);
    const b = viewBoxOf(v, pane);
    // The view's top-left graph point lands on the pane's top-left pixel, its centre on the centre.
    expect(b.x * t.scale + t.x).toBeCloseTo(0);
    expect(b.y * t.scale + t.y).toBeCloseTo(0);
    expect(v.cx * t.scale + t.x).toBeCloseTo(pane.width / 2);
    expect(t.scale).toBe(2);
  });

  it('fits a rectangle with a margin, centred', () => {
    const v = fitRect({ x: 0, y: 0, width: 736, height: 100 }, pane);
    expect(v).toEqual({ cx: 368, cy: 50, scale: 0.5 });
    expect(fitRect({ x: 0, y: 0, width: 1, height: 1 }, pane).scale).toBe(MAX_SCALE);
  });

  it('starts small graphs fitted and tall ones at their top, readable', () => {
    expect(initialViewport({ width: 200, height: 100 }, pane)).toEqual(fitRect({ x: 0, y: 0, width: 200, height: 100 }, pane));
    const tall = initialViewport({ width: 300, height: 100_000 }, pane);
    expect(tall.scale).toBe(1);
    // The top edge of the graph is just below the top of the pane.
    expect(viewBoxOf(tall, pane).y).toBeCloseTo(-16);
    const wide = initialViewport({ width: 2000, height: 100_000 }, pane);
    expect(wide.scale).toBeCloseTo(368 / 2000);
  });

  it('zooms about the pointer: the graph point under it stays put', () => {
    const v = { cx: 100, cy: 100, scale: 1 };
    const content = { width: 1000, height: 1000 };
    const z = zoomAt(v, 2, 300, 50, content, pane);
    const before = viewBoxOf(v, pane);
    const after = viewBoxOf(z, pane);
    expect(before.x + 300 / v.scale).toBeCloseTo(after.x + 300 / z.scale);
    expect(before.y + 50 / v.scale).toBeCloseTo(after.y + 50 / z.scale);
    expect(z.scale).toBe(2);
  });

  it('clamps zoom between a bit beyond fit and the maximum', () => {
    const content = { width: 10_000, height: 10_000 };
    expect(clampScale(100, content, pane)).toBe(MAX_SCALE);
    expect(clampScale(1e-9, content, pane)).toBe(minScale(content, pane));
    expect(minScale(content, pane)).toBeCloseTo(0.5 * (268 / 10_000));
    expect(minScale({ width: 10, height: 10 }, pane)).toBe(0.1);
  });

  it('pans with the pointer', () => {
    expect(panBy({ cx: 100, cy: 100, scale: 2 }, 40, -20)).toEqual({ cx: 80, cy: 110, scale: 2 });
  });

  it('centres on a block, zooming only when needed', () => {
    const rect = { x: 500, y: 500, width: 100, height: 50 };
    expect(centerOn({ cx: 0, cy: 0, scale: 1 }, rect, pane)).toEqual({ cx: 550, cy: 525, scale: 1 });
    // Too far out to read: zoom in to 1:1.
    expect(centerOn({ cx: 0, cy: 0, scale: LABEL_MIN_SCALE / 2 }, rect, pane).scale).toBe(1);
    // The block would not fit: zoom out until it does.
    const big = { x: 0, y: 0, width: 2000, height: 100 };
    expect(centerOn({ cx: 0, cy: 0, scale: 1 }, big, pane).scale).toBeCloseTo(368 / 2000);
  });

  it('recognises saved viewports', () => {
    expect(isViewport({ cx: 1, cy: 2, scale: 0.5 })).toBe(true);
    expect(isViewport({ cx: 1, cy: 2, scale: 0 })).toBe(false);
    expect(isViewport({ cx: 1, cy: NaN, scale: 1 })).toBe(false);
    expect(isViewport('x')).toBe(false);
  });
});
