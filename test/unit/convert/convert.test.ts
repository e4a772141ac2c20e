import { truncateSync, unlinkSync } from 'node:fs';
import { copyFile, mkdtemp, readdir, rm, stat, appendFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { convertFile, defaultOutputPath } from '../../../src/core/convert/convert';
import { ModelFormatError } from '../../../src/core/formats/errors';
import { openModelFile } from '../../../src/core/formats/openModelFile';
import { FusionError } from '../../../src/core/fuse/fuseBlock';
import { buildStructure } from '../../../src/core/model/buildStructure';
import { allBlocks } from '../../../src/core/model/structure';
import { OutputError } from '../../../src/core/writers/atomicFile';

const MODELS = path.join(__dirname, '..', '..', 'fixtures', 'models');
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'replens-convert-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function fixture(name: string): Promise<string> {
  const target = path.join(dir, name);
  await copyFile(path.join(MODELS, name), target);
  return target;
}

describe('convertFile', () => {
  it('writes <stem>.deploy<ext> beside the input with every block fused and the rest in order', async () => {
    const input = await fixture('repvgg_tiny_train.pth');
    const result = await convertFile(input);
    expect(result.output).toBe(path.join(dir, 'repvgg_tiny_train.deploy.pth'));
    expect(result.blocksFused).toBe(7);
    const out = await openModelFile(result.output);
    try {
      const s = buildStructure(out);
      expect(s.form).toBe('deploy');
      expect(s.params.total).toBe(result.paramsAfter);
      expect(out.tensors.map((t) => t.name)).toEqual([
        ...['stage0', 'stage1.0', 'stage2.0', 'stage2.1', 'stage3.0', 'stage3.1', 'stage4.0'].flatMap((b) => [
          `${b}.rbr_reparam.weight`,
          `${b}.rbr_reparam.bias`,
        ]),
        'linear.weight',
        'linear.bias',
      ]);
      const reference = await openModelFile(path.join(MODELS, 'repvgg_tiny_deploy.pth'));
      try {
        // Same names, shapes and dtypes as the deploy model that PyTorch itself produced.
        expect(out.tensors.map((t) => [t.name, t.dtype, t.shape])).toEqual(reference.tensors.map((t) => [t.name, t.dtype, t.shape]));
        const a = await out.tensors[0].toFloat64();
        const b = await reference.tensors[0].toFloat64();
        expect(Math.max(...a.map((v, i) => Math.abs(v - b[i])))).toBeLessThan(1e-5);
      } finally {
        await reference.close();
      }
    } finally {
      await out.close();
    }
  });

  it('drops a DataParallel module. prefix unless asked to keep it', async () => {
    const input = await fixture('repvgg_tiny_wrapped.pth.tar');
    const dropped = await convertFile(input);
    expect(dropped.droppedPrefix).toBe('module.');
    const kept = await convertFile(input, { keepPrefix: true, output: path.join(dir, 'kept.pth') });
    const out = await openModelFile(kept.output);
    expect(out.tensors[0].name).toBe('module.stage0.rbr_reparam.weight');
    await out.close();
  });

  it('keeps fp16 as fp16 unless --dtype says otherwise', async () => {
    const input = await fixture('repvgg_tiny_fp16.pt');
    const same = await openModelFile((await convertFile(input)).output);
    expect(new Set(same.tensors.map((t) => t.dtype))).toEqual(new Set(['float16']));
    await same.close();
    const widened = await openModelFile((await convertFile(input, { dtype: 'float32', output: path.join(dir, 'f32.pth') })).output);
    expect(new Set(widened.tensors.map((t) => t.dtype))).toEqual(new Set(['float32']));
    await widened.close();
  });

  it('keeps SE weights, uses the eps stored in a pickled module, and writes safetensors on request', async () => {
    const se = await convertFile(await fixture('repvgg_se_train.pth'), { format: 'safetensors' });
    expect(se.output.endsWith('repvgg_se_train.deploy.safetensors')).toBe(true);
    const out = await openModelFile(se.output);
    expect(out.format).toBe('safetensors');
    expect(out.tensors.some((t) => t.name === 'stage1.0.se.down.weight')).toBe(true);
    await out.close();
    const yolo = await convertFile(await fixture('yolov7_repconv_train.pt'));
    expect(yolo.eps).toEqual([{ value: 1e-3, source: 'stored in the file', blocks: 3 }]);
  });

  it('passes deploy-form files through as an error, not a silent copy', async () => {
    const input = await fixture('repvgg_tiny_deploy.pth');
    await expect(convertFile(input)).rejects.toThrow(/already in deploy form/);
    expect(await readdir(dir)).toEqual(['repvgg_tiny_deploy.pth']);
  });

  it('names the template output and follows the output format', () => {
    expect(defaultOutputPath('/m/a.pth.tar', 'pth')).toBe('/m/a.deploy.pth.tar');
    expect(defaultOutputPath('/m/a.safetensors', 'pth')).toBe('/m/a.deploy.pth');
    expect(defaultOutputPath('/m/a.pt', 'safetensors', '{stem}-fused{ext}')).toBe('/m/a-fused.safetensors');
  });
});

describe('nothing is lost', () => {
  const leftovers = async () => (await readdir(dir)).filter((n) => n.includes('replens-tmp') || n.includes('.deploy.'));

  it('never overwrites an existing output without force, and never the input', async () => {
    const input = await fixture('repvgg_tiny_train.pth');
    const first = await convertFile(input);
    const before = await readFile(first.output);
    const error = await convertFile(input).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OutputError);
    expect((error as OutputError).message).toMatch(/already exists/);
    expect(await readFile(first.output)).toEqual(before);
    await expect(convertFile(input, { output: input, force: true })).rejects.toThrow(/is the input file/);
    expect((await stat(input)).size).toBe((await stat(path.join(MODELS, 'repvgg_tiny_train.pth'))).size);
    await expect(convertFile(input, { force: true })).resolves.toMatchObject({ blocksFused: 7 });
  });

  it('cancelling mid-way leaves no file behind', async () => {
    const input = await fixture('repvgg_tiny_train.pth');
    const controller = new AbortController();
    const error = await convertFile(input, { signal: controller.signal, onProgress: (done) => done === 3 && controller.abort() }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OutputError);
    expect((error as OutputError).code).toBe('cancelled');
    expect(await leftovers()).toEqual([]);
  });

  it('an input that changes while being converted gives an error and no output', async () => {
    const input = await fixture('repvgg_tiny_train.pth');
    const error = await convertFile(input, { onProgress: (done) => void (done === 2 && appendFile(input, 'x')) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModelFormatError);
    expect((error as Error).message).toMatch(/changed while it was being converted/);
    expect(await leftovers()).toEqual([]);
  });

  it.each(['repvgg_tiny_train.pth', 'repvgg_tiny_train.onnx'])(
    '%s deleted while being converted: the message says so, naming it, and nothing is written',
    async (name) => {
      const input = await fixture(name);
      const error = await convertFile(input, { onProgress: (done) => done === 2 && unlinkSync(input) }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ModelFormatError);
      expect((error as Error).message).toBe(`${input}: was deleted or moved while it was being converted; nothing was written`);
      expect(await readdir(dir)).toEqual([]);
    },
  );

  it.each(['repvgg_tiny_train.pth', 'repvgg_tiny_train.onnx', 'timm_repvgg_train.safetensors'])(
    '%s truncated while being read: the message names it and says it changed, and nothing is written',
    async (name) => {
      const input = await fixture(name);
      const error = await convertFile(input, { onProgress: (done) => done === 2 && truncateSync(input, 1000) }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ModelFormatError);
      expect((error as Error).message).toBe(`${input}: the file changed while it was being converted; nothing was written`);
      expect(await leftovers()).toEqual([]);
    },
  );

  it('the ONNX export of a checkpoint hears of a deleted or truncated input the same way', async () => {
    const input = await fixture('repvgg_tiny_train.pth');
    const deleted = await convertFile(input, { format: 'onnx', onProgress: (done) => done === 2 && unlinkSync(input) }).catch((e: unknown) => e);
    expect((deleted as Error).message).toBe(`${input}: was deleted or moved while it was being converted; nothing was written`);
    await fixture('repvgg_tiny_train.pth');
    const truncated = await convertFile(input, { format: 'onnx', onProgress: (done) => done === 2 && truncateSync(input, 1000) }).catch((e: unknown) => e);
    expect((truncated as Error).message).toBe(`${input}: the file changed while it was being converted; nothing was written`);
    expect(await leftovers()).toEqual([]);
  });

  it('a block that cannot be fused names itself, and nothing is written', async () => {
    const input = await fixture('repvgg_tiny_train.pth');
    const error = await convertFile(input, { eps: -10 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FusionError);
    expect((error as Error).message).toMatch(/^stage0: .*running_var \+ eps must be positive/);
    expect(await leftovers()).toEqual([]);
  });

  it('reading a model file in full does not disturb the structure (blocks keep their tensors)', async () => {
    const model = await openModelFile(path.join(MODELS, 'mobileone_train.pth'));
    const s = buildStructure(model);
    expect(allBlocks(s).every((b) => b.tensors.length > 0)).toBe(true);
    await model.close();
  });
});
