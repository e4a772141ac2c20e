/**
 * What the report view keeps across hide/restore (VS Code drops a hidden webview's page
 * and gives the next one the state saved with setState): which report it shows, whose data
 * the host sends again, and the UI. Restored values are checked field by field, so state
 * written by an older build degrades to defaults instead of failing.
 */
import { parseSavedReportRef, type ReportRef } from '../../src/shared/protocol';
import { isBlockSort, type BlockSort } from './blockSort';
import { isViewport, type Viewport } from './viewport';

export const REPORT_TABS = ['summary', 'graphs', 'quantization', 'int8'] as const;
export type ReportTab = (typeof REPORT_TABS)[number];

export const PANES = ['before', 'after'] as const;
export type PaneId = (typeof PANES)[number];

export interface ReportUiState {
  tab: ReportTab;
  selectedBlock: string | null;
  sort: BlockSort | null;
  viewports: Partial<Record<PaneId, Viewport>>;
  /** Collapsed stage groups, per pane. */
  collapsed: Record<PaneId, string[]>;
}

export function defaultUiState(): ReportUiState {
  return { tab: 'summary', selectedBlock: null, sort: null, viewports: {}, collapsed: { before: [], after: [] } };
}

const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string');

export function restoreUiState(raw: unknown): ReportUiState {
  const ui = defaultUiState();
  if (typeof raw !== 'object' || raw === null) return ui;
  const r = raw as Record<string, unknown>;
  if (REPORT_TABS.includes(r.tab as ReportTab)) ui.tab = r.tab as ReportTab;
  if (typeof r.selectedBlock === 'string') ui.selectedBlock = r.selectedBlock;
  if (isBlockSort(r.sort)) ui.sort = r.sort;
  const viewports = (typeof r.viewports === 'object' && r.viewports) || {};
  const collapsed = (typeof r.collapsed === 'object' && r.collapsed) || {};
  for (const pane of PANES) {
    const v = (viewports as Record<string, unknown>)[pane];
    if (isViewport(v)) ui.viewports[pane] = v;
    const c = (collapsed as Record<string, unknown>)[pane];
    if (isStringArray(c)) ui.collapsed[pane] = c;
  }
  return ui;
}

/** The report a saved state refers to, if any, and the UI state to show it with. */
export function restoreSavedState(raw: unknown): { report: ReportRef | undefined; ui: ReportUiState } {
  const ui = typeof raw === 'object' && raw !== null ? (raw as { ui?: unknown }).ui : undefined;
  return { report: parseSavedReportRef(raw), ui: restoreUiState(ui) };
}
