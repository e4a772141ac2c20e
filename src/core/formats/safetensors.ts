import { rangeReader } from './byteReader';
import type { ByteSource } from './byteSource';
import { MAX_SAFETENSORS_HEADER } from './detect';
import { messageOf, ModelFormatError, truncatedReason } from './errors';
import type { ModelFile } from './modelFile';
import { DTYPE_BYTES, Tensor, numelOf, type DType } from './tensor';

/** Same cap as the reference implementation: a larger header is not a real checkpoint. */
const MAX_HEADER_BYTES = MAX_SAFETENSORS_HEADER;

const DTYPES: Readonly<Record<string, DType>> = {
  F64: 'float64',
  F32: 'float32',
  F16: 'float16',
  BF16: 'bfloat16',
  I64: 'int64',
  I32: 'int32',
  I16: 'int16',
  I8: 'int8',
  U8: 'uint8',
  BOOL: 'bool',
};

interface HeaderEntry {
  name: string;
  dtype: DType;
  shape: number[];
  begin: number;
  end: number;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isIndex(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function parseEntry(file: string, name: string, v: unknown): HeaderEntry {
  const bad = (what: string): never => {
    throw new ModelFormatError(file, `tensor '${name}': ${what}`);
  };
  if (!isRecord(v)) return bad('header entry is not an object');
  const { dtype, shape, data_offsets: offsets } = v;
  if (typeof dtype !== 'string') return bad('dtype is missing');
  const dt = Object.hasOwn(DTYPES, dtype) ? DTYPES[dtype] : undefined;
  if (dt === undefined) throw new ModelFormatError(file, `unknown dtype ${dtype} for tensor ${name}`);
  if (!Array.isArray(shape) || !shape.every(isIndex)) return bad('shape must be a list of non-negative integers');
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isIndex)) return bad('data_offsets must be [begin, end]');
  const [begin, end] = offsets as [number, number];
  if (end < begin) return bad(`data_offsets [${begin}, ${end}] end before they begin`);
  const expected = numelOf(shape, file) * DTYPE_BYTES[dt];
  if (end - begin !== expected) {
    return bad(`data_offsets [${begin}, ${end}] hold ${end - begin} bytes, shape [${shape.join(', ')}] of ${dtype} needs ${expected}`);
  }
  return { name, dtype: dt, shape, begin, end };
}

/**
 * Reads a safetensors file: an 8-byte little-endian header length, a JSON header, then the tensor
 * bytes. Only the header is read here; each tensor reads its own range when asked.
 */
export async function readSafetensors(src: ByteSource): Promise<ModelFile> {
  const file = src.name;
  if (src.size < 8) throw new ModelFormatError(file, truncatedReason(src.size, 'a safetensors file', 'shorter than its 8-byte header length'));
  const lenBytes = await src.read(0, 8);
  const headerLen = new DataView(lenBytes.buffer, lenBytes.byteOffset, 8).getBigUint64(0, true);
  if (headerLen > BigInt(MAX_HEADER_BYTES)) throw new ModelFormatError(file, `header claims ${headerLen} bytes, more than the ${MAX_HEADER_BYTES} allowed`);
  if (headerLen > BigInt(src.size - 8)) {
    throw new ModelFormatError(
      file,
      truncatedReason(src.size, 'the header of a safetensors file', `header claims ${headerLen} bytes, the file has ${src.size - 8} after the length`),
    );
  }
  const headerSize = Number(headerLen);

  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(await src.read(8, headerSize)));
  } catch (e) {
    if (e instanceof ModelFormatError) throw e;
    throw new ModelFormatError(file, `header is not valid JSON: ${messageOf(e)}`);
  }
  if (!isRecord(header)) throw new ModelFormatError(file, 'header is not a JSON object');

  let metadata: Record<string, unknown> = {};
  const entries: HeaderEntry[] = [];
  for (const [name, value] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (!isRecord(value) || !Object.values(value).every((x) => typeof x === 'string')) {
        throw new ModelFormatError(file, '__metadata__ must map strings to strings');
      }
      // A copy made by defining properties: a '__proto__' key stays a key instead of a prototype.
      metadata = Object.fromEntries(Object.entries(value));
    } else {
      entries.push(parseEntry(file, name, value));
    }
  }

  // The format requires the data to be covered exactly: sorted by offset, each tensor starts where
  // the previous one ends and the last one ends with the file. Anything else is corruption.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  const dataStart = 8 + headerSize;
  const dataSize = src.size - dataStart;
  let covered = 0;
  for (const e of entries) {
    if (e.begin < covered)
      throw new ModelFormatError(file, `tensor '${e.name}': data_offsets [${e.begin}, ${e.end}] overlap the previous tensor, which ends at ${covered}`);
    if (e.begin > covered)
      throw new ModelFormatError(file, `tensor '${e.name}': data_offsets start at ${e.begin}, leaving bytes ${covered}..${e.begin} unused`);
    if (e.end > dataSize) {
      throw new ModelFormatError(
        file,
        truncatedReason(src.size, 'the tensor data of a safetensors file', `tensor '${e.name}' needs data bytes up to ${e.end}, the file has ${dataSize}`),
      );
    }
    covered = e.end;
  }
  if (covered !== dataSize) throw new ModelFormatError(file, `${dataSize - covered} bytes after the last tensor belong to no tensor`);

  const read = (offset: number, length: number) => src.read(offset, length);
  const tensors = entries.map(
    (e) =>
      new Tensor(
        e.name,
        e.dtype,
        e.shape,
        () => read(dataStart + e.begin, e.end - e.begin),
        undefined,
        () => rangeReader(read, dataStart + e.begin, dataStart + e.end, e.name),
      ),
  );
  return { path: file, format: 'safetensors', tensors, metadata, warnings: [], close: () => src.close() };
}
