import { describe, expect, it } from 'vitest';
import { MAX_BLOCK_NAME_LENGTH, parseWebviewMessage } from '../../../src/shared/protocol';

describe('messages from the report webview', () => {
  it('accepts the known shapes and copies only their fields', () => {
    expect(parseWebviewMessage({ type: 'ready', extra: 1 })).toEqual({ type: 'ready' });
    expect(parseWebviewMessage({ type: 'selectBlock', block: 'stage1.0', extra: 'x' })).toEqual({ type: 'selectBlock', block: 'stage1.0' });
    expect(parseWebviewMessage({ type: 'exportReport', format: 'markdown' })).toEqual({ type: 'exportReport', format: 'markdown' });
    expect(parseWebviewMessage({ type: 'exportReport', format: 'json' })).toEqual({ type: 'exportReport', format: 'json' });
  });

  it('drops bad fields, long names and unknown types', () => {
    expect(parseWebviewMessage({ type: 'selectBlock' })).toBeUndefined();
    expect(parseWebviewMessage({ type: 'selectBlock', block: 42 })).toBeUndefined();
    expect(parseWebviewMessage({ type: 'selectBlock', block: 'x'.repeat(MAX_BLOCK_NAME_LENGTH) })).toEqual({ type: 'selectBlock', block: 'x'.repeat(MAX_BLOCK_NAME_LENGTH) });
    expect(parseWebviewMessage({ type: 'selectBlock', block: 'x'.repeat(MAX_BLOCK_NAME_LENGTH + 1) })).toBeUndefined();
    expect(parseWebviewMessage({ type: 'exportReport', format: 'html' })).toBeUndefined();
    expect(parseWebviewMessage({ type: 'exportReport', format: ['json'] })).toBeUndefined();
    expect(parseWebviewMessage({ type: 'writeFile', path: '/etc/passwd' })).toBeUndefined();
    expect(parseWebviewMessage({ type: 'toString' })).toBeUndefined();
    expect(parseWebviewMessage(null)).toBeUndefined();
    expect(parseWebviewMessage('selectBlock')).toBeUndefined();
  });

  it('accepts only the model editor actions it knows, and never a path', () => {
    expect(parseWebviewMessage({ type: 'runAction', action: 'convertToDeploy', path: '/etc/passwd' })).toEqual({ type: 'runAction', action: 'convertToDeploy' });
    expect(parseWebviewMessage({ type: 'runAction', action: 'checkParity' })).toEqual({ type: 'runAction', action: 'checkParity' });
    expect(parseWebviewMessage({ type: 'runAction', action: 'workbench.action.terminal.new' })).toBeUndefined();
    expect(parseWebviewMessage({ type: 'runAction' })).toBeUndefined();
  });
});
