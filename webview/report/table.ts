/**
 * Plain HTML tables for the long lists (one row per block, hundreds of rows): native
 * elements keep building and re-sorting them cheap, where a web-component grid would
 * create a shadow DOM per cell, and fixed column widths spare the browser measuring every
 * cell on each layout. Sortable headers are buttons; rows are activated with the button in
 * their first cell (Enter/Space) or by clicking anywhere on them.
 */
import { h } from '../dom';

export interface TableColumn {
  title: string;
  /** Share of the table width, e.g. '20%'; the columns without one split the rest. */
  width?: string;
  numeric?: boolean;
  /** Present on sortable columns. */
  sort?: { state: 'ascending' | 'descending' | 'none'; onSort: () => void };
}

export interface TableRow {
  key: string;
  /** The first cell's text; it becomes the row's activation button. */
  label: Node | string;
  cells: (Node | string)[];
  attrs?: Record<string, string>;
}

/** The widths of a fixed-layout table, set through the CSSOM (the page's CSP forbids style attributes). */
export function colGroup(columns: readonly TableColumn[]): HTMLTableColElement {
  const group = document.createElement('colgroup');
  for (const c of columns) {
    const col = document.createElement('col');
    if (c.width) col.style.width = c.width;
    group.append(col);
  }
  return group;
}

export function headerRow(columns: readonly TableColumn[]): HTMLTableRowElement {
  return h(
    'tr',
    {},
    ...columns.map((c) => {
      const th = h('th', { scope: 'col', class: c.numeric ? 'num' : '' });
      if (!c.sort) {
        th.append(c.title);
        return th;
      }
      th.setAttribute('aria-sort', c.sort.state);
      const arrow = c.sort.state === 'ascending' ? ' ▲' : c.sort.state === 'descending' ? ' ▼' : '';
      const b = h('button', { class: 'rl-sort', type: 'button', title: `Sort by ${c.title}` }, c.title, h('span', { 'aria-hidden': 'true' }, arrow));
      b.addEventListener('click', c.sort.onSort);
      th.append(b);
      return th;
    }),
  );
}

export function bodyRow(columns: readonly TableColumn[], row: TableRow, onActivate: (key: string) => void): HTMLTableRowElement {
  const button = h('button', { class: 'rl-row-button', type: 'button' }, row.label);
  const tr = h('tr', { ...row.attrs, class: `rl-activatable ${row.attrs?.class ?? ''}`.trim() }, h('th', { scope: 'row' }, button), ...row.cells.map((c, i) => h('td', { class: columns[i + 1]?.numeric ? 'num' : '' }, c)));
  // One listener on the row: the button's own click (from Enter/Space too) bubbles here.
  tr.addEventListener('click', () => onActivate(row.key));
  return tr;
}
