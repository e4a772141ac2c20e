import { describe, expect, it } from 'vitest';
import { MAX_BLOCK_NAME_LENGTH, packReport, parseSavedReportRef, parseWebviewMessage, unpackReport } from '../../../src/shared/protocol';
import { smallSample } from '../webview/sampleReport';

describe('messages from the report webview', () => {
  it('accepts the known shapes and copies only their fields', () => {
    expect(parseWebviewMessage({ type: 'ready', extra: 1 })).toEqual({ type: 'ready' });
    expect(parseWebviewMessage({ type: 'selectBlock', block: 'stage1.0', extra: 'x' })).toEqual({ type: 'selectBlock', block: 'stage1.0' });
    expect(parseWebviewMessage({ type: 'exportReport', format: 'markdown' })).toEqual({ type: 'exportReport', format: 'markdown' });
    expect(parseWebviewMessage({ type: 'exportReport', format: 'json' })).toEqual({ type: 'exportReport', format: 'json' });
    // Re-running names no file: the host runs the check of the panel it came from.
    expect(parseWebviewMessage({ type: 'rerunReport', input: '/etc/passwd' })).toEqual({ type: 'rerunReport' });
    // The host knows which model the report is about: the page names no file for the INT8 check either.
    expect(parseWebviewMessage({ type: 'measureInt8', input: '/etc/passwd' })).toEqual({ type: 'measureInt8' });
  });

  it('drops bad fields, long names and unknown types', () => {
    expect(parseWebviewMessage({ type: 'selectBlock' })).toBeUndefined();
    expect(parseWebviewMessage({ type: 'selectBlock', block: 42 })).toBeUndefined();
    expect(parseWebviewMessage({ type: 'selectBlock', block: 'x'.repeat(MAX_BLOCK_NAME_LENGTH) })).toEqual({
      type: 'selectBlock',
      block: 'x'.repeat(MAX_BLOCK_NAME_LENGTH),
    });
    expect(parseWebviewMessage({ type: 'selectBlock', block: 'x'.repeat(MAX_BLOCK_NAME_LENGTH + 1) })).toBeUndefined();
    expect(parseWebviewMessage({ type: 'exportReport', format: 'html' })).toBeUndefined();
    expect(parseWebviewMessage({ type: 'exportReport', format: ['json'] })).toBeUndefined();
    expect(parseWebviewMessage({ type: 'writeFile', path: '/etc/passwd' })).toBeUndefined();
    expect(parseWebviewMessage({ type: 'toString' })).toBeUndefined();
    expect(parseWebviewMessage(null)).toBeUndefined();
    expect(parseWebviewMessage('selectBlock')).toBeUndefined();
  });

  it('accepts only the model editor actions it knows, and never a path', () => {
    expect(parseWebviewMessage({ type: 'runAction', action: 'convertToDeploy', path: '/etc/passwd' })).toEqual({
      type: 'runAction',
      action: 'convertToDeploy',
    });
    expect(parseWebviewMessage({ type: 'runAction', action: 'checkParity' })).toEqual({ type: 'runAction', action: 'checkParity' });
    expect(parseWebviewMessage({ type: 'runAction', action: 'openReport' })).toEqual({ type: 'runAction', action: 'openReport' });
    expect(parseWebviewMessage({ type: 'runAction', action: 'workbench.action.terminal.new' })).toBeUndefined();
    expect(parseWebviewMessage({ type: 'runAction' })).toBeUndefined();
  });
});

describe('the report view state the host reads on restore', () => {
  const ref = { id: 'mf0abc12-0123abcd', input: '/models/a.onnx', output: '/models/a.deploy.onnx' };

  it('takes the report reference and copies only its fields', () => {
    expect(parseSavedReportRef({ report: { ...ref, extra: 1 }, ui: { tab: 'graphs' } })).toEqual(ref);
    expect(parseSavedReportRef({ report: { ...ref, id: null, output: null } })).toEqual({ ...ref, id: null, output: null });
  });

  it('refuses anything else', () => {
    expect(parseSavedReportRef(undefined)).toBeUndefined();
    expect(parseSavedReportRef({ ui: {} })).toBeUndefined();
    expect(parseSavedReportRef({ report: { ...ref, id: 5 } })).toBeUndefined();
    expect(parseSavedReportRef({ report: { ...ref, id: 'x'.repeat(101) } })).toBeUndefined();
    expect(parseSavedReportRef({ report: { ...ref, input: '' } })).toBeUndefined();
    expect(parseSavedReportRef({ report: { ...ref, input: 'x'.repeat(4097) } })).toBeUndefined();
    expect(parseSavedReportRef({ report: { ...ref, output: undefined } })).toBeUndefined();
    // What an older build saved: the whole report, which has no id.
    expect(parseSavedReportRef({ report: { input: '/models/a.onnx', output: null, blocks: [] } })).toBeUndefined();
  });
});

describe('a report on its way to the webview', () => {
  it('carries the graphs as bytes and arrives whole, NaN and infinities included', () => {
    const report = smallSample();
    report.blocks[0].parity = { maxAbs: Infinity, maxRel: -Infinity, cosine: NaN, pass: false };
    report.before.nodes[0].label = 'Conv 3×3 → “fused” 🙂';
    const packed = packReport(report);
    expect(packed.graphs.constructor.name).toBe('Uint8Array');
    expect(packed.graphs.every((byte) => byte < 0x80)).toBe(true);
    expect(packed.facts).not.toHaveProperty('before');
    // What postMessage does to it on the way.
    const back = unpackReport(structuredClone(packed));
    expect(back).toEqual(report);
    expect(back.blocks[0].parity).toEqual({ maxAbs: Infinity, maxRel: -Infinity, cosine: NaN, pass: false });
  });
});
