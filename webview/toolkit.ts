/**
 * The one place that knows which web-component library draws RepLens' controls.
 * Everything else asks this module for elements, so moving off the (archived)
 * webview-ui-toolkit means changing this file only.
 */
import {
  provideVSCodeDesignSystem,
  vsCodeBadge,
  vsCodeButton,
  vsCodeDataGrid,
  vsCodeDataGridCell,
  vsCodeDataGridRow,
  vsCodeDivider,
  vsCodeDropdown,
  vsCodeOption,
  vsCodePanels,
  vsCodePanelTab,
  vsCodePanelView,
  vsCodeProgressRing,
} from '@vscode/webview-ui-toolkit';

provideVSCodeDesignSystem().register(
  vsCodeButton(),
  vsCodeBadge(),
  vsCodeDivider(),
  vsCodeDropdown(),
  vsCodeOption(),
  vsCodeProgressRing(),
  vsCodeDataGrid(),
  vsCodeDataGridRow(),
  vsCodeDataGridCell(),
  vsCodePanels(),
  vsCodePanelTab(),
  vsCodePanelView(),
);

function withAttrs<E extends HTMLElement>(el: E, attrs: Record<string, string>): E {
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
}

export function button(label: string, onClick: () => void, appearance: 'primary' | 'secondary' = 'primary', attrs: Record<string, string> = {}): HTMLElement {
  const el = withAttrs(document.createElement('vscode-button'), attrs);
  el.setAttribute('appearance', appearance);
  el.textContent = label;
  el.addEventListener('click', onClick);
  return el;
}

/** A badge; give it a class to recolour it (see `.rl-badge-*` in replens.css, which set the toolkit's --badge-* tokens). */
export function badge(text: string, attrs: Record<string, string> = {}): HTMLElement {
  const el = withAttrs(document.createElement('vscode-badge'), attrs);
  el.textContent = text;
  return el;
}

/** A drop-down list of plain values; `onChange` gets the value picked. */
export function dropdown(values: readonly string[], selected: string, onChange: (value: string) => void, attrs: Record<string, string> = {}): HTMLElement {
  const el = withAttrs(document.createElement('vscode-dropdown'), attrs);
  for (const value of values) {
    const option = document.createElement('vscode-option');
    option.setAttribute('value', value);
    option.textContent = value;
    if (value === selected) option.setAttribute('selected', '');
    el.append(option);
  }
  el.addEventListener('change', () => {
    const value = (el as HTMLElement & { value?: string }).value;
    if (value !== undefined && value !== selected) onChange(value);
  });
  return el;
}

export function divider(): HTMLElement {
  return document.createElement('vscode-divider');
}

export function progressRing(): HTMLElement {
  return document.createElement('vscode-progress-ring');
}

export interface TabSpec {
  id: string;
  label: string;
  panel: HTMLElement;
}

/**
 * Tabs with one panel each. `onChange` hears every switch, by click or arrow keys.
 * Element ids are `tab-<id>` / `view-<id>`, so there must be one set of tabs per page.
 */
export function tabs(specs: readonly TabSpec[], active: string, onChange: (id: string) => void): HTMLElement {
  const panels = document.createElement('vscode-panels');
  panels.setAttribute('activeid', `tab-${active}`);
  for (const s of specs) {
    const tab = withAttrs(document.createElement('vscode-panel-tab'), { id: `tab-${s.id}`, 'data-testid': `tab-${s.id}` });
    tab.textContent = s.label;
    panels.append(tab);
  }
  for (const s of specs) {
    const view = withAttrs(document.createElement('vscode-panel-view'), { id: `view-${s.id}` });
    view.append(s.panel);
    panels.append(view);
  }
  panels.addEventListener('change', (e) => {
    // 'change' also bubbles up from controls inside the panels; only the tab strip's own counts.
    if (e.target !== panels) return;
    const id = (panels as HTMLElement & { activeid?: string }).activeid;
    if (id?.startsWith('tab-')) onChange(id.slice(4));
  });
  return panels;
}

/** Switches `tabs()` to another tab from code; unlike a click, this does not call `onChange`. */
export function selectTab(panels: HTMLElement, id: string): void {
  (panels as HTMLElement & { activeid?: string }).activeid = `tab-${id}`;
}

export interface GridColumn {
  title: string;
  /** Narrowest content width (a CSS length, e.g. '7ch'): room for the column's numbers and its longest header word. */
  min: string;
  /** Share of the width left over above the minimums. */
  fr: number;
  numeric?: boolean;
}

function gridCell(content: string | Node, column: number, numeric: boolean, header: boolean): HTMLElement {
  const cell = document.createElement('vscode-data-grid-cell');
  cell.setAttribute('grid-column', String(column));
  if (header) cell.setAttribute('cell-type', 'columnheader');
  if (numeric) cell.classList.add('num');
  cell.append(content);
  return cell;
}

/**
 * A keyboard-navigable grid (arrow keys move between cells). Every cell is a web component
 * with its own shadow DOM, so this is for short tables; long ones are plain <table>s.
 * Each row lays out its own cells, so columns line up only through fixed minimums: below their
 * sum the grid keeps its width and the returned wrapper scrolls sideways instead of squeezing cells.
 */
export function dataGrid(columns: readonly GridColumn[], rows: readonly (string | Node)[][], attrs: Record<string, string> = {}): HTMLElement {
  const grid = withAttrs(document.createElement('vscode-data-grid'), attrs);
  grid.setAttribute('generate-header', 'none');
  // Cells are padded by --rl-cell-pad (replens.css), which a narrow panel makes smaller.
  const min = (c: GridColumn) => `calc(${c.min} + 2 * var(--rl-cell-pad))`;
  grid.setAttribute('grid-template-columns', columns.map((c) => `minmax(${min(c)}, ${c.fr}fr)`).join(' '));
  // Through the CSSOM: the page's CSP forbids style attributes.
  grid.style.minWidth = `calc(${columns.map(min).join(' + ')})`;
  const header = document.createElement('vscode-data-grid-row');
  header.setAttribute('row-type', 'header');
  header.append(...columns.map((c, i) => gridCell(c.title, i + 1, c.numeric ?? false, true)));
  const body = rows.map((cells) => {
    const row = document.createElement('vscode-data-grid-row');
    row.append(...cells.map((c, i) => gridCell(c, i + 1, columns[i]?.numeric ?? false, false)));
    return row;
  });
  grid.append(header, ...body);
  const scroller = document.createElement('div');
  scroller.className = 'rl-scroll-x';
  scroller.append(grid);
  return scroller;
}
