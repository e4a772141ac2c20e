import { promises as fs } from 'node:fs';
import { ParityError } from './errors';

export interface NpyArray {
  shape: number[];
  /** The values as float32, the precision the graphs run in. */
  data: Float32Array;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

/**
 * Reads a NumPy .npy array of little-endian float32 or float64 in C order (what np.save writes
 * for such arrays). Anything else is refused with the reason, never guessed at.
 */
export function parseNpy(bytes: Uint8Array, file: string): NpyArray {
  const fail = (reason: string): never => {
    throw new ParityError(file, reason, 'input');
  };
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) fail('not a .npy file (no \\x93NUMPY magic)');
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (major !== 1 && major !== 2 && major !== 3) fail(`.npy format version ${major} is not supported`);
  const headerStart = major === 1 ? 10 : 12;
  if (bytes.length < headerStart) fail('truncated .npy header');
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const dataStart = headerStart + headerLength;
  if (dataStart > bytes.length) fail('truncated .npy header');
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(headerStart, dataStart));

  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) fail(`unreadable .npy header: ${header.trim()}`);
  if (fortran === 'True') fail('the array is in Fortran order; save it with np.ascontiguousarray first');
  const itemSize = descr === '<f4' ? 4 : descr === '<f8' ? 8 : fail(`dtype '${descr}' is not supported: give little-endian float32 ('<f4') or float64 ('<f8')`);
  const shape = shapeText!
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((s) => (/^\d+$/.test(s) ? Number(s) : fail(`bad dimension '${s}' in the .npy shape`)));
  const numel = shape.reduce((a, b) => a * b, 1);
  if (!Number.isSafeInteger(numel)) fail(`shape (${shape.join(', ')}) is too large`);
  if (bytes.length - dataStart !== numel * itemSize) {
    fail(`shape (${shape.join(', ')}) of ${descr} needs ${numel * itemSize} bytes of data, the file has ${bytes.length - dataStart}`);
  }
  // A copy at offset 0 (typed-array views need alignment). Not bytes.slice: on a Buffer that is a view.
  const raw = new Uint8Array(bytes.subarray(dataStart));
  const data = itemSize === 4 ? new Float32Array(raw.buffer, 0, numel) : Float32Array.from(new Float64Array(raw.buffer, 0, numel));
  return { shape, data };
}

export async function readNpy(file: string): Promise<NpyArray> {
  let bytes: Uint8Array;
  try {
    bytes = await fs.readFile(file);
  } catch (e) {
    throw new ParityError(file, `could not be read: ${(e as Error).message}`, 'input');
  }
  return parseNpy(bytes, file);
}
