import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { detectKind } from '../../../src/core/formats/detect';
import { ModelFormatError } from '../../../src/core/formats/errors';
import { MemoryByteSource } from '../../../src/core/formats/byteSource';
import { readModel } from '../../../src/core/formats/openModelFile';
import { formatBytes } from '../../../src/shared/format';

/*
 * A file cut short (a copy or download that stopped, a full disk) is the most common broken model.
 * Every reader that can tell says so in the same first words, says where the file ends, and says what
 * to do; and the format recognised from the first bytes (the editor's badge) stays what the file began as.
 */

const MODELS = path.join(__dirname, '..', '..', 'fixtures', 'models');
const PEERS = path.join(__dirname, '..', '..', 'fixtures', 'peers');

const FILES = [
  path.join(MODELS, 'repvgg_tiny_train.pth'),
  path.join(MODELS, 'repvgg_tiny_train_legacy.pth'),
  path.join(MODELS, 'repvgg_tiny_train.safetensors'),
  path.join(MODELS, 'repvgg_tiny_train.onnx'),
  path.join(MODELS, 'repvgg_full_module.pt'),
  path.join(PEERS, 'yolov7', 'tiny_repconv_last.pt'),
];

describe('a file cut short', () => {
  for (const file of FILES) {
    it(`${path.basename(file)}: every cut reads as "the file is truncated", and still begins as what it was`, async () => {
      const whole = new Uint8Array(await readFile(file));
      const kind = detectKind(whole.subarray(0, 64), whole.length);
      const cuts = [...Array.from({ length: 19 }, (_, i) => Math.floor((whole.length * (i + 1)) / 20)), whole.length - 1];
      for (const n of cuts) {
        const bytes = whole.subarray(0, n);
        expect(detectKind(bytes.subarray(0, 64), n), `cut at ${n}`).toBe(kind);
        const e = await readModel(new MemoryByteSource(path.basename(file), bytes)).then(
          () => undefined,
          (err: unknown) => err,
        );
        expect(e, `cut at ${n}`).toBeInstanceOf(ModelFormatError);
        const reason = (e as ModelFormatError).reason;
        expect(reason.startsWith(`the file is truncated: it ends at ${formatBytes(n)}, inside `), `cut at ${n}: ${reason}`).toBe(true);
        expect(reason.endsWith('; re-save or re-download it'), `cut at ${n}: ${reason}`).toBe(true);
      }
    });
  }
});
