import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelFormatError } from '../../../src/core/formats/errors';
import { imageInput } from '../../../src/core/quant/calibrationImages';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'replens-images-'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A PNG whose pixel (x, y) has the colour `paint(x, y)`. */
async function png(name: string, width: number, height: number, paint: (x: number, y: number) => [number, number, number]): Promise<string> {
  const image = new PNG({ width, height });
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const [r, g, b] = paint(x, y);
      image.data.set([r, g, b, 255], (y * width + x) * 4);
    }
  const file = path.join(dir, name);
  await writeFile(file, PNG.sync.write(image));
  return file;
}

describe('calibration images', () => {
  it('a flat colour: every pixel of each channel the same, in 0…1 or normalized by ImageNet mean and std', async () => {
    const file = await png('flat.png', 30, 20, () => [255, 128, 0]);
    const unit = await imageInput(file, 8, 8, 'unit');
    expect(unit.dims).toEqual([1, 3, 8, 8]);
    expect(new Set(unit.data.subarray(0, 64))).toEqual(new Set([1]));
    expect(new Set(unit.data.subarray(64, 128))).toEqual(new Set([Math.fround(128 / 255)]));
    expect(new Set(unit.data.subarray(128))).toEqual(new Set([0]));
    const imagenet = await imageInput(file, 8, 8, 'imagenet');
    expect(imagenet.data[0]).toBeCloseTo((1 - 0.485) / 0.229, 5);
    expect(imagenet.data[128]).toBeCloseTo((0 - 0.406) / 0.225, 5);
  });

  it('a wide image is scaled to cover the input and center-cropped: the middle third stays, the sides go', async () => {
    // 90×30: red left third, green middle third, blue right third. Scaled to 30×10 for a 10×10 input,
    // the crop keeps columns 10…19, the green third.
    const file = await png('thirds.png', 90, 30, (x) => (x < 30 ? [255, 0, 0] : x < 60 ? [0, 255, 0] : [0, 0, 255]));
    const { dims, data } = await imageInput(file, 10, 10, 'unit');
    expect(dims).toEqual([1, 3, 10, 10]);
    const channelMean = (c: number) => data.subarray(c * 100, (c + 1) * 100).reduce((a, b) => a + b, 0) / 100;
    expect(channelMean(1)).toBeGreaterThan(0.9);
    expect(channelMean(0)).toBeLessThan(0.05);
    expect(channelMean(2)).toBeLessThan(0.05);
  });

  it('reads JPEG as well, and says what is wrong with anything else', async () => {
    const file = path.join(dir, 'grey.jpg');
    await writeFile(file, jpeg.encode({ width: 16, height: 16, data: Buffer.alloc(16 * 16 * 4, 200) }, 95).data);
    const { data } = await imageInput(file, 4, 4, 'unit');
    for (const v of data) expect(v).toBeCloseTo(200 / 255, 1);
    const text = path.join(dir, 'notes.png');
    await writeFile(text, 'not an image');
    await expect(imageInput(text, 4, 4, 'unit')).rejects.toThrow(ModelFormatError);
    await expect(imageInput(text, 4, 4, 'unit')).rejects.toThrow(/notes\.png: is not a PNG or JPEG image/);
    const cut = path.join(dir, 'cut.png');
    const whole = PNG.sync.write(Object.assign(new PNG({ width: 8, height: 8 }), {}));
    await writeFile(cut, whole.subarray(0, whole.length >> 1));
    await expect(imageInput(cut, 4, 4, 'unit')).rejects.toThrow(/cut\.png: cannot be decoded as an image/);
  });
});
