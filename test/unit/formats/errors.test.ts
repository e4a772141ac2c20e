import { describe, expect, it } from 'vitest';
import { errorFile, ModelFormatError, ReplensError, userMessage } from '../../../src/core/formats/errors';
import { FusionError } from '../../../src/core/fuse/fuseBlock';
import { GraphError } from '../../../src/core/graph/buildGraph';
import { ParityError } from '../../../src/core/parity/errors';
import { OutputError } from '../../../src/core/writers/atomicFile';

/** How each kind of RepLens error becomes user text: a file by its base name, a block's name as it is. */
describe('userMessage and errorFile', () => {
  it('every error RepLens reports about its input or output is a ReplensError; a bug is not', () => {
    for (const e of [
      new ModelFormatError('/m/a.pth', 'r'),
      new OutputError('/m/b.pth', 'r'),
      new FusionError('stage1.0', 'r'),
      new GraphError('stage1.0', 'r'),
      new ParityError('/m/a.pth', 'r', 'input'),
    ]) {
      expect(e).toBeInstanceOf(ReplensError);
    }
    expect(new TypeError('x')).not.toBeInstanceOf(ReplensError);
  });

  it('a file comes by its base name, the full path stays for the detail line', () => {
    const e = new ModelFormatError('/models/run 3/a.pth', 'the file is truncated');
    expect(userMessage(e)).toBe('a.pth: the file is truncated');
    expect(userMessage(e, '/models/run 3/a.pth')).toBe('the file is truncated');
    expect(errorFile(e)).toBe('/models/run 3/a.pth');
  });

  it('two files compared: both by their base names', () => {
    const e = new ParityError('/m/a.pth vs /m/a.deploy.pth', 'inference timed out', 'timeout');
    expect(userMessage(e)).toBe('a.pth vs a.deploy.pth: inference timed out');
    expect(errorFile(e)).toBeUndefined();
  });

  it('a block keeps its whole name, even one with slashes (ONNX node paths), and is not taken for a file', () => {
    const e = new FusionError('/backbone/stage1/block0', 'NaN in its weight');
    expect(userMessage(e)).toBe('/backbone/stage1/block0: NaN in its weight');
    expect(errorFile(e)).toBeUndefined();
  });

  it('anything else: its message', () => {
    expect(userMessage(new Error('boom'))).toBe('boom');
    expect(userMessage('text')).toBe('text');
  });
});
