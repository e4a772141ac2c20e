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
  /** A fixed content width, e.g. '7ch': room for the column's numbers and its longest header word. */
  width?: string;
  /** For the one column without a fixed width, which takes what is left: its narrowest content width. */
  min?: string;
  /** Right-aligned and kept on one line, so '1.00e-4' never splits at its minus sign. */
  numeric?: boolean;
  /** A numeric column whose cells may wrap at their spaces ('370,944 → 331,968'). */
  wraps?: boolean;
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

/** A column's width with the cell padding, which replens.css narrows in a narrow panel. */
export const withCellPadding = (content: string): string => `calc(${content} + 2 * var(--rl-cell-pad))`;

/**
 * A fixed-layout table with its column widths, set through the CSSOM (the page's CSP forbids
 * style attributes). Narrower than the columns need, it keeps its width and the page scrolls
 * sideways, rather than splitting numbers and words.
 */
export function fixedTable(columns: readonly TableColumn[], attrs: Record<string, string>, ...sections: HTMLTableSectionElement[]): HTMLTableElement {
  const group = document.createElement('colgroup');
  for (const c of columns) {
    const col = document.createElement('col');
    if (c.width) col.style.width = withCellPadding(c.width);
    group.append(col);
  }
  const table = h('table', attrs, group, ...sections);
  table.style.minWidth = `calc(${columns.map((c) => withCellPadding(c.width ?? c.min ?? '0px')).join(' + ')})`;
  return table;
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

function cellClass(c: TableColumn | undefined): string {
  return c?.numeric ? (c.wraps ? 'num' : 'num rl-nowrap') : '';
}

export function bodyRow(columns: readonly TableColumn[], row: TableRow, onActivate: (key: string) => void): HTMLTableRowElement {
  const button = h('button', { class: 'rl-row-button', type: 'button' }, row.label);
  const tr = h(
    'tr',
    { ...row.attrs, class: `rl-activatable ${row.attrs?.class ?? ''}`.trim() },
    h('th', { scope: 'row' }, button),
    ...row.cells.map((c, i) => h('td', { class: cellClass(columns[i + 1]) }, c)),
  );
  // One listener on the row: the button's own click (from Enter/Space too) bubbles here.
  tr.addEventListener('click', () => onActivate(row.key));
  return tr;
}
