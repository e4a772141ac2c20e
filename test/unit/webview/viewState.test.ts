import { describe, expect, it } from 'vitest';
import { defaultUiState, restoreSavedReport, restoreUiState } from '../../../webview/reportModel/viewState';
import { smallSample } from './sampleReport';

describe('report view state across hide/restore', () => {
  it('round-trips through JSON, as VS Code stores it', () => {
    const ui = { tab: 'graphs', selectedBlock: 'stage1.0', sort: { key: 'maxRel', dir: 'desc' }, viewports: { before: { cx: 1, cy: 2, scale: 0.5 } }, collapsed: { before: ['stage0'], after: [] } };
    const report = smallSample();
    const saved = restoreSavedReport(JSON.parse(JSON.stringify({ report, ui })));
    expect(saved?.ui).toEqual(ui);
    expect(saved?.report).toEqual(report);
  });

  it('replaces each unusable field by its default and keeps the rest', () => {
    const ui = restoreUiState({ tab: 'nope', selectedBlock: 3, sort: { key: 'maxRel', dir: 'sideways' }, viewports: { before: { cx: 0, cy: 0, scale: -1 }, after: { cx: 5, cy: 5, scale: 2 } }, collapsed: { before: 'stage0', after: ['stage1'] } });
    expect(ui).toEqual({ ...defaultUiState(), viewports: { after: { cx: 5, cy: 5, scale: 2 } }, collapsed: { before: [], after: ['stage1'] } });
    expect(restoreUiState(undefined)).toEqual(defaultUiState());
    expect(restoreUiState({ viewports: null, collapsed: 7 })).toEqual(defaultUiState());
  });

  it('refuses a saved report this build cannot draw', () => {
    expect(restoreSavedReport(undefined)).toBeUndefined();
    expect(restoreSavedReport({ ui: {} })).toBeUndefined();
    const { before: _before, ...noGraph } = smallSample();
    expect(restoreSavedReport({ report: noGraph })).toBeUndefined();
    expect(restoreSavedReport({ report: { ...smallSample(), blocks: 'x' } })).toBeUndefined();
    // A valid report with no UI state opens with the defaults.
    expect(restoreSavedReport({ report: smallSample() })?.ui).toEqual(defaultUiState());
  });
});
