/** The small SVG charts of the report: sparklines, the error histogram, the overlay legend. */
import { escapeXml } from '../reportModel/graphMarkup';
import { ERROR_LEVELS } from '../reportModel/errorScale';
import { histogramLayout, sparklinePaths } from '../reportModel/chartGeometry';
import type { ErrorHistogram } from '../reportModel/histogram';
import type { Sparkline } from '../reportModel/quantization';
import { h } from '../dom';

const SVG_NS = 'http://www.w3.org/2000/svg';

function svg(width: number, height: number, label: string, markup: string, cls: string): SVGSVGElement {
  const el = document.createElementNS(SVG_NS, 'svg');
  el.setAttribute('class', cls);
  el.setAttribute('width', String(width));
  el.setAttribute('height', String(height));
  el.setAttribute('viewBox', `0 0 ${width} ${height}`);
  el.setAttribute('role', 'img');
  el.setAttribute('aria-label', label);
  el.innerHTML = `<title>${escapeXml(label)}</title>${markup}`;
  return el;
}

export function sparklineSvg(line: Sparkline, label: string, width: number, height: number): SVGSVGElement {
  const { normal, outlier } = sparklinePaths(line, width, height);
  const el = svg(width, height, label, `<path class="rl-spark" d="${normal}"/><path class="rl-spark-outlier" d="${outlier}"/>`, 'rl-sparkline');
  // Bars may be squeezed sideways to fit a narrow table cell; their heights are what matters.
  el.setAttribute('preserveAspectRatio', 'none');
  return el;
}

/**
 * One block's INT8 error as a bar against the worst block's (`max`): the bar is the error with per-tensor
 * weights, the tick the error with per-channel weights, so the gap between them is what per-channel buys.
 */
export function errorBarSvg(perTensor: number, perChannel: number, max: number, label: string, width: number, height: number): SVGSVGElement {
  const x = (v: number) => (max > 0 && Number.isFinite(v) ? Math.max(1, Math.min(width, (v / max) * width)) : 0);
  const tick = x(perChannel);
  return svg(
    width,
    height,
    label,
    `<rect class="rl-int8-bar" x="0" y="${height * 0.2}" width="${x(perTensor).toFixed(1)}" height="${height * 0.6}"/>` +
      `<line class="rl-int8-tick" x1="${tick.toFixed(1)}" x2="${tick.toFixed(1)}" y1="0" y2="${height}"/>`,
    'rl-int8-chart',
  );
}

const PLOT_HEIGHT = 110;
const TOP = 16;
const AXIS = 34;
const LEFT = 8;

export function histogramSvg(hist: ErrorHistogram, rtol: number): SVGSVGElement {
  const layout = histogramLayout(hist, rtol, PLOT_HEIGHT);
  const base = TOP + PLOT_HEIGHT;
  const parts: string[] = [];
  for (const b of layout.bars) {
    const x = LEFT + b.x;
    const cx = x + b.width / 2;
    parts.push(
      `<rect class="rl-hist-bar rl-hist-${b.kind}" x="${x}" y="${base - b.height}" width="${b.width}" height="${b.height}"><title>${escapeXml(`${b.label}: ${b.count} block${b.count === 1 ? '' : 's'}`)}</title></rect>`,
      b.count ? `<text class="rl-hist-count" x="${cx}" y="${base - b.height - 4}">${b.count}</text>` : '',
      `<text class="rl-hist-label" x="${cx}" y="${base + 14}">${escapeXml(b.label)}</text>`,
    );
  }
  parts.push(`<line class="rl-hist-axis" x1="${LEFT}" x2="${LEFT + layout.width}" y1="${base}" y2="${base}"/>`);
  if (layout.rtolX !== null) {
    const x = LEFT + layout.rtolX;
    parts.push(
      `<line class="rl-hist-rtol" x1="${x}" x2="${x}" y1="${TOP - 10}" y2="${base + 20}"/><text class="rl-hist-rtol-label" x="${x + 3}" y="${base + 30}">rtol</text>`,
    );
  }
  const width = Math.max(LEFT * 2 + layout.width + 30, 160);
  const summary = layout.bars.map((b) => `${b.label}: ${b.count}`).join(', ');
  return svg(width, TOP + PLOT_HEIGHT + AXIS, `Histogram of per-block max relative error, one bar per decade. ${summary}`, parts.join(''), 'rl-histogram');
}

/** The error overlay's legend: one swatch per level, and the mark failing blocks carry. */
export function legend(): HTMLElement {
  return h(
    'ul',
    { class: 'rl-legend', 'aria-label': 'Error overlay legend: node colour by the block’s max relative error' },
    ...ERROR_LEVELS.map((l) => h('li', {}, h('span', { class: `rl-swatch rl-err-${l.level}`, 'aria-hidden': 'true' }, l.level === 'fail' ? '!' : ''), l.label)),
  );
}
