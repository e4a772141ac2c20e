import { describe, expect, it } from 'vitest';
import { defaultUiState, restoreSavedState, restoreUiState } from '../../../webview/reportModel/viewState';
import { smallSample } from './sampleReport';

describe('report view state across hide/restore', () => {
  it('round-trips through JSON, as VS Code stores it', () => {
    const ui = {
      tab: 'graphs',
      selectedBlock: 'stage1.0',
      sort: { key: 'maxRel', dir: 'desc' },
      viewports: { before: { cx: 1, cy: 2, scale: 0.5 } },
      collapsed: { before: ['stage0'], after: [] },
    };
    const report = { id: 'mf0abc12-0123abcd', input: '/models/a.pth', output: '/models/a.deploy.pth' };
    const saved = restoreSavedState(JSON.parse(JSON.stringify({ report, ui })));
    expect(saved).toEqual({ report, ui });
  });

  it('replaces each unusable field by its default and keeps the rest', () => {
    const ui = restoreUiState({
      tab: 'nope',
      selectedBlock: 3,
      sort: { key: 'maxRel', dir: 'sideways' },
      viewports: { before: { cx: 0, cy: 0, scale: -1 }, after: { cx: 5, cy: 5, scale: 2 } },
      collapsed: { before: 'stage0', after: ['stage1'] },
    });
    expect(ui).toEqual({ ...defaultUiState(), viewports: { after: { cx: 5, cy: 5, scale: 2 } }, collapsed: { before: [], after: ['stage1'] } });
    expect(restoreUiState(undefined)).toEqual(defaultUiState());
    expect(restoreUiState({ viewports: null, collapsed: 7 })).toEqual(defaultUiState());
  });

  it('a state without a usable report reference restores no report, and the UI still restores', () => {
    expect(restoreSavedState(undefined)).toEqual({ report: undefined, ui: defaultUiState() });
    expect(restoreSavedState({ ui: { tab: 'quantization' } })).toEqual({ report: undefined, ui: { ...defaultUiState(), tab: 'quantization' } });
    expect(restoreSavedState({ ui: { tab: 'int8' } })).toEqual({ report: undefined, ui: { ...defaultUiState(), tab: 'int8' } });
    // What an older build saved: the report itself, without the fields of a reference.
    expect(restoreSavedState({ report: smallSample() }).report).toBeUndefined();
    expect(restoreSavedState({ report: { id: 7, input: '/a.pth', output: null } }).report).toBeUndefined();
    expect(restoreSavedState({ report: { id: null, input: '/a.pth', output: null } }).report).toEqual({ id: null, input: '/a.pth', output: null });
  });
});
