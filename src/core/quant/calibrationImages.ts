import { promises as fs } from 'node:fs';
import * as jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { ModelFormatError } from '../formats/errors';

/**
 * Calibration images: PNG or JPEG files decoded by pngjs and jpeg-js, scaled so that they cover the
 * model's input and center-cropped to it (the ImageNet evaluation transform, without its extra
 * margin), then normalized as the model was trained: ImageNet's mean and standard deviation for
 * classifiers, or just 0…1.
 */

export type ImageNormalization = 'imagenet' | 'unit';

export const IMAGE_SUFFIXES = ['.png', '.jpg', '.jpeg'] as const;

const IMAGENET_MEAN = [0.485, 0.456, 0.406];
const IMAGENET_STD = [0.229, 0.224, 0.225];
/** jpeg-js refuses images that would need more (a hostile header claiming a huge size). */
const MAX_DECODE_MB = 512;

interface Rgba {
  width: number;
  height: number;
  data: Uint8Array;
}

function decode(file: string, bytes: Uint8Array): Rgba {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  try {
    if (bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47) {
      const png = PNG.sync.read(buffer);
      return { width: png.width, height: png.height, data: png.data };
    }
    if (bytes[0] === 0xff && bytes[1] === 0xd8) {
      const image = jpeg.decode(buffer, { useTArray: true, formatAsRGBA: true, maxMemoryUsageInMB: MAX_DECODE_MB });
      return { width: image.width, height: image.height, data: image.data };
    }
  } catch (e) {
    throw new ModelFormatError(file, `cannot be decoded as an image: ${(e as Error).message}`);
  }
  throw new ModelFormatError(file, 'is not a PNG or JPEG image');
}

/**
 * The image in `file` as one [1, 3, height, width] input: scaled (bilinear) so that it covers height×width,
 * center-cropped to it, in 0…1 and then normalized.
 */
export async function imageInput(
  file: string,
  height: number,
  width: number,
  normalization: ImageNormalization,
): Promise<{ dims: number[]; data: Float32Array }> {
  const image = decode(file, await fs.readFile(file));
  if (image.width === 0 || image.height === 0) throw new ModelFormatError(file, 'is an empty image');
  const scale = Math.max(height / image.height, width / image.width);
  // Offsets of the crop inside the scaled image.
  const offY = (image.height * scale - height) / 2;
  const offX = (image.width * scale - width) / 2;
  const data = new Float32Array(3 * height * width);
  const at = (x: number, y: number, c: number) => image.data[(y * image.width + x) * 4 + c];
  for (let y = 0; y < height; y++) {
    const sy = Math.min(image.height - 1, Math.max(0, (y + offY + 0.5) / scale - 0.5));
    const y0 = Math.floor(sy);
    const y1 = Math.min(image.height - 1, y0 + 1);
    const fy = sy - y0;
    for (let x = 0; x < width; x++) {
      const sx = Math.min(image.width - 1, Math.max(0, (x + offX + 0.5) / scale - 0.5));
      const x0 = Math.floor(sx);
      const x1 = Math.min(image.width - 1, x0 + 1);
      const fx = sx - x0;
      for (let c = 0; c < 3; c++) {
        const top = at(x0, y0, c) * (1 - fx) + at(x1, y0, c) * fx;
        const bottom = at(x0, y1, c) * (1 - fx) + at(x1, y1, c) * fx;
        const unit = (top * (1 - fy) + bottom * fy) / 255;
        data[(c * height + y) * width + x] = normalization === 'imagenet' ? (unit - IMAGENET_MEAN[c]) / IMAGENET_STD[c] : unit;
      }
    }
  }
  return { dims: [1, 3, height, width], data };
}
