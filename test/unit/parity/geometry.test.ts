import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildStructureFromTensors } from '../../../src/core/model/buildStructure';
import { allBlocks } from '../../../src/core/model/structure';
import { adoptGeometry } from '../../../src/core/parity/geometry';
import { openModelFile } from '../../../src/core/formats/openModelFile';

const MODELS = path.join(__dirname, '..', '..', 'fixtures', 'models');

async function structureOf(file: string) {
  const model = await openModelFile(path.join(MODELS, file));
  try {
    return buildStructureFromTensors(model.format, model.tensors, model.modules);
  } finally {
    await model.close();
  }
}

describe('adoptGeometry', () => {
  it('takes family, stride and groups from the train file where the deploy file guessed them', async () => {
    const train = await structureOf('yolov7_repconv_train_sd.pth');
    // The same blocks in deploy form: one conv each, as a deploy state dict stores them.
    const deploy = structuredClone(train);
    for (const b of allBlocks(deploy)) {
      Object.assign(b, {
        form: 'deploy',
        family: 'repvgg',
        groups: 3,
        inChannels: 48,
        groupsSource: 'chain',
        stride: null,
        strideSource: 'unknown',
        branches: [],
      });
    }
    const notes = adoptGeometry(deploy, train, 'd.pth');
    const m5 = allBlocks(deploy).find((b) => b.name === 'model.5')!;
    expect(m5).toMatchObject({ family: 'yolov7-repconv', groups: 2, inChannels: 32, stride: 1 });
    expect(notes).toContain('d.pth: model.5: family yolov7-repconv, groups 2, inChannels 32, stride 1 taken from the reference (the file does not store them)');
  });

  it('keeps what the candidate stores, and blocks whose shape differs', async () => {
    const train = await structureOf('yolov7_repconv_train.pt');
    const other = structuredClone(train);
    const [first, second] = allBlocks(other);
    Object.assign(first, { stride: 2, strideSource: 'attribute' });
    Object.assign(second, { outChannels: second.outChannels + 1, groups: 7, groupsSource: 'chain' });
    expect(adoptGeometry(other, train, 'x.pt')).toEqual([]);
    expect(first.stride).toBe(2);
    expect(second.groups).toBe(7);
  });
});
