import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ReportStore } from '../../../src/core/report/reportStore';
import { smallSample } from '../webview/sampleReport';

vi.mock('vscode', () => import('./vscodeMock').then((m) => m.vscode));
// The page's HTML is beside the point here, and the bundle it carries is built only for packaging.
vi.mock('../../../src/extension/webviewHtml', () => ({
  webviewHtml: (_extension: unknown, view: string, title: string) => `<page ${view}: ${title}>`,
  webviewOptions: {},
}));
import { createdPanels, FakeWebviewPanel, vscode } from './vscodeMock';

const { ReportPanels } = await import('../../../src/extension/reportPanel');
const { PAGE_START_MS } = await import('../../../src/extension/pageStart');
const { log } = await import('../../../src/extension/log');

const input = '/models/repvgg_a0_train.pth';
const ref = { input, output: '/models/repvgg_a0_deploy.pth', id: 'stored-1' };

function reportPanels() {
  const store = { load: () => Promise.resolve({ ...smallSample(), input }), fileOf: (id: string) => `/reports/${id}.report.json` };
  return new ReportPanels({
    extensionUri: vscode.Uri.file('/extension') as never,
    store: store as unknown as ReportStore,
    onSelectBlock: () => undefined,
    rerun: () => undefined,
    measureInt8: () => Promise.reject(new Error('not measured here')),
  });
}

/** A report tab VS Code restored after a reload, in the second column, shown and waiting for its page. */
async function restoredReport() {
  const panels = reportPanels();
  const restored = new FakeWebviewPanel('replens.report', 'Report: repvgg_a0_train.pth', 2);
  await panels.restore(restored as never, ref);
  return { panels, restored };
}

const reportsPosted = (panel: FakeWebviewPanel) => panel.posted.filter((m) => m.type === 'report').length;

beforeEach(() => {
  vi.useFakeTimers();
  createdPanels.length = 0;
});
afterEach(() => {
  vi.useRealTimers();
  vi.clearAllMocks();
});

describe('a report page that does not start', () => {
  it('is replaced by a new panel in the same column, which gets the report when its page starts', async () => {
    const { restored } = await restoredReport();
    expect(restored.webview.html).toBe('<page report: Report: repvgg_a0_train.pth>');

    await vi.advanceTimersByTimeAsync(PAGE_START_MS - 1);
    expect(createdPanels).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(createdPanels).toHaveLength(1);
    const fresh = createdPanels[0];
    expect(restored.disposed).toBe(true);
    expect([fresh.viewType, fresh.title, fresh.viewColumn]).toEqual(['replens.report', restored.title, 2]);
    expect(fresh.webview.html).toBe('<page report: Report: repvgg_a0_train.pth>');
    expect(vi.mocked(log().warn)).toHaveBeenCalledWith(expect.stringContaining(`The report of ${input} did not start within`));

    fresh.send({ type: 'ready' });
    expect(reportsPosted(fresh)).toBe(1);
    expect(fresh.posted[0]).toMatchObject({ type: 'report', storedAs: 'stored-1' });
    // A started page is left alone.
    await vi.advanceTimersByTimeAsync(10 * PAGE_START_MS);
    expect(createdPanels).toHaveLength(1);
    expect(fresh.disposed).toBe(false);
  });

  it('is not replaced when it starts in time', async () => {
    const { restored } = await restoredReport();
    await vi.advanceTimersByTimeAsync(PAGE_START_MS - 1);
    restored.send({ type: 'ready' });
    expect(reportsPosted(restored)).toBe(1);
    await vi.advanceTimersByTimeAsync(10 * PAGE_START_MS);
    expect(createdPanels).toHaveLength(0);
    expect(restored.disposed).toBe(false);
  });

  it('is not replaced while hidden; shown again, a page that does not start is', async () => {
    const { restored } = await restoredReport();
    restored.send({ type: 'ready' });
    // Hidden, the panel loses its page: no page is expected until it is shown.
    restored.setVisible(false);
    await vi.advanceTimersByTimeAsync(10 * PAGE_START_MS);
    expect(createdPanels).toHaveLength(0);

    restored.setVisible(true);
    await vi.advanceTimersByTimeAsync(PAGE_START_MS / 2);
    // Focus moving while it waits does not restart the wait.
    restored.setVisible(true);
    await vi.advanceTimersByTimeAsync(PAGE_START_MS / 2);
    expect(createdPanels).toHaveLength(1);
    expect(restored.disposed).toBe(true);
    createdPanels[0].send({ type: 'ready' });
    expect(reportsPosted(createdPanels[0])).toBe(1);
  });

  it('is tried again twice, then the user is told what to do, once', async () => {
    const { restored } = await restoredReport();
    await vi.advanceTimersByTimeAsync(3 * PAGE_START_MS);
    expect(createdPanels).toHaveLength(2);
    expect(restored.disposed).toBe(true);
    expect(createdPanels[0].disposed).toBe(true);
    const last = createdPanels[1];
    expect(last.disposed).toBe(false);
    expect(vi.mocked(vscode.window.showErrorMessage)).toHaveBeenCalledExactlyOnceWith(
      'RepLens: The report of repvgg_a0_train.pth did not load after 3 tries: close its tab and use Open Report.',
    );

    last.setVisible(false);
    last.setVisible(true);
    await vi.advanceTimersByTimeAsync(3 * PAGE_START_MS);
    expect(createdPanels).toHaveLength(2);
    expect(vi.mocked(vscode.window.showErrorMessage)).toHaveBeenCalledTimes(1);
    // A page that starts late still gets the report.
    last.send({ type: 'ready' });
    expect(reportsPosted(last)).toBe(1);
  });

  it('counts its tries afresh once a page has started', async () => {
    const { restored } = await restoredReport();
    await vi.advanceTimersByTimeAsync(2 * PAGE_START_MS);
    expect(createdPanels).toHaveLength(2);
    createdPanels[1].send({ type: 'ready' });
    createdPanels[1].setVisible(false);
    createdPanels[1].setVisible(true);
    await vi.advanceTimersByTimeAsync(PAGE_START_MS);
    expect(createdPanels).toHaveLength(3);
    expect(restored.disposed && createdPanels[0].disposed && createdPanels[1].disposed).toBe(true);
    expect(vi.mocked(vscode.window.showErrorMessage)).not.toHaveBeenCalled();
  });
});
