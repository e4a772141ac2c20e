import { promises as fs } from 'node:fs';
import * as nodePath from 'node:path';
import type { ByteSource } from './byteSource';
import { ModelFormatError } from './errors';
import type { ModelFile } from './modelFile';
import { decodeModelFromSource } from './onnxCodec';
import { ONNX_DATA_TYPE, ONNX_OTHER_DATA_TYPES, type OnnxModel, type OnnxTensor } from './onnxModel';
import { DTYPE_BYTES, Tensor, numelOf, type DType } from './tensor';

// The ONNX model reader: a ModelFile whose tensors are the initializers, read lazily.

function dataTypeName(code: number | undefined): string {
  if (code === undefined) return 'none';
  return ONNX_DATA_TYPE[code]?.name ?? ONNX_OTHER_DATA_TYPES[code] ?? `code ${code}`;
}

/** Host byte order is little-endian on every platform VS Code runs on, so typed arrays give the tensor layout directly. */
function typedFieldBytes(t: OnnxTensor, dtype: DType): { count: number; field: string; bytes: () => Uint8Array } {
  const asBytes = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  switch (dtype) {
    case 'float32':
      return { count: t.floatData.length, field: 'float_data', bytes: () => asBytes(Float32Array.from(t.floatData)) };
    case 'float64':
      return { count: t.doubleData.length, field: 'double_data', bytes: () => asBytes(Float64Array.from(t.doubleData)) };
    case 'int64':
      return { count: t.int64Data.length, field: 'int64_data', bytes: () => asBytes(BigInt64Array.from(t.int64Data)) };
    case 'int32':
      return { count: t.int32Data.length, field: 'int32_data', bytes: () => asBytes(Int32Array.from(t.int32Data)) };
    case 'int16':
      return { count: t.int32Data.length, field: 'int32_data', bytes: () => asBytes(Int16Array.from(t.int32Data)) };
    // float16/bfloat16 values travel as their 16 bit patterns in int32_data.
    case 'float16':
    case 'bfloat16':
      return { count: t.int32Data.length, field: 'int32_data', bytes: () => asBytes(Uint16Array.from(t.int32Data)) };
    case 'int8':
      return { count: t.int32Data.length, field: 'int32_data', bytes: () => asBytes(Int8Array.from(t.int32Data)) };
    case 'uint8':
    case 'bool':
      return { count: t.int32Data.length, field: 'int32_data', bytes: () => Uint8Array.from(t.int32Data) };
  }
}

function parseByteCount(file: string, tensor: string, key: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = /^\d{1,16}$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n)) throw new ModelFormatError(file, `initializer '${tensor}': external data ${key} '${v}' is not a byte count`);
  return n;
}

/** Where an external-data tensor lives, checked so that a model cannot make RepLens read outside its own folder. */
async function externalLocation(file: string, modelDir: string, t: OnnxTensor, name: string, byteLength: number) {
  const entries = new Map(t.externalData.map((e) => [e.key, e.value]));
  const location = entries.get('location');
  if (location === undefined || location === '') throw new ModelFormatError(file, `initializer '${name}': external data has no location`);
  const resolved = nodePath.resolve(modelDir, location);
  const rel = nodePath.relative(modelDir, resolved);
  if (nodePath.isAbsolute(location) || location.includes('\0') || rel === '' || rel.startsWith('..') || nodePath.isAbsolute(rel)) {
    throw new ModelFormatError(file, `initializer '${name}': external data location '${location}' is outside the model's folder`);
  }
  const offset = parseByteCount(file, name, 'offset', entries.get('offset')) ?? 0;
  const length = parseByteCount(file, name, 'length', entries.get('length')) ?? byteLength;
  if (length !== byteLength) {
    throw new ModelFormatError(file, `initializer '${name}': external data length ${length} does not match ${byteLength} bytes of its shape and type`);
  }
  let size: number;
  try {
    const st = await fs.stat(resolved);
    if (!st.isFile()) throw new Error('not a file');
    size = st.size;
  } catch {
    throw new ModelFormatError(file, `initializer '${name}': external data file '${location}' (${resolved}) not found`);
  }
  if (offset + length > size) {
    throw new ModelFormatError(file, `initializer '${name}': external data needs bytes ${offset}..${offset + length} of '${location}', which has ${size}`);
  }
  return { path: resolved, offset, length };
}

async function readRange(path: string, offset: number, length: number): Promise<Uint8Array> {
  const handle = await fs.open(path, 'r');
  try {
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await handle.read(out, done, length - done, offset + done);
      if (bytesRead === 0) throw new ModelFormatError(path, `file changed while reading (ended at ${offset + done})`);
      done += bytesRead;
    }
    return out;
  } finally {
    await handle.close();
  }
}

async function initializerTensor(file: string, modelDir: string, t: OnnxTensor, index: number, warnings: string[]): Promise<Tensor | undefined> {
  const name = t.name;
  if (name === undefined || name === '') throw new ModelFormatError(file, `initializer #${index} has no name`);
  const type = t.dataType === undefined ? undefined : ONNX_DATA_TYPE[t.dataType];
  if (type === undefined) {
    warnings.push(`initializer '${name}' has data type ${dataTypeName(t.dataType)}, which RepLens does not read; it is left out of the tensor list`);
    return undefined;
  }
  const { dtype } = type;
  const byteLength = numelOf(t.dims, file) * DTYPE_BYTES[dtype];
  if (t.dataLocation === 1) {
    const ext = await externalLocation(file, modelDir, t, name, byteLength);
    return new Tensor(name, dtype, t.dims, () => readRange(ext.path, ext.offset, ext.length));
  }
  if (t.dataLocation !== undefined && t.dataLocation !== 0) {
    throw new ModelFormatError(file, `initializer '${name}': unknown data_location ${t.dataLocation}`);
  }
  const raw = t.rawData;
  if (raw !== undefined) {
    if (raw.length !== byteLength) {
      throw new ModelFormatError(
        file,
        `initializer '${name}': raw_data has ${raw.length} bytes, shape [${t.dims.join(', ')}] of ${type.name} needs ${byteLength}`,
      );
    }
    return new Tensor(name, dtype, t.dims, async () => (raw instanceof Uint8Array ? raw : raw.source.read(raw.offset, raw.length)));
  }
  const typed = typedFieldBytes(t, dtype);
  const numel = byteLength / DTYPE_BYTES[dtype];
  if (typed.count !== numel) {
    throw new ModelFormatError(file, `initializer '${name}': ${typed.field} has ${typed.count} values, shape [${t.dims.join(', ')}] needs ${numel}`);
  }
  return new Tensor(name, dtype, t.dims, async () => typed.bytes());
}

/** Model-level facts, keyed by their onnx.proto names; optional ones only when the file has them. */
function modelMetadata(m: OnnxModel): Record<string, unknown> {
  const meta: Record<string, unknown> = {
    ir_version: m.irVersion,
    producer_name: m.producerName ?? '',
    producer_version: m.producerVersion ?? '',
    opset_import: Object.fromEntries(m.opsetImport.map((o) => [o.domain ?? '', o.version])),
  };
  if (m.domain) meta.domain = m.domain;
  if (m.modelVersion !== undefined) meta.model_version = m.modelVersion;
  if (m.docString) meta.doc_string = m.docString;
  if (m.metadataProps.length > 0) meta.metadata_props = Object.fromEntries(m.metadataProps.map((e) => [e.key ?? '', e.value ?? '']));
  return meta;
}

/**
 * Reads an ONNX model. Initializer raw_data stays in the file until a tensor is read; external data
 * is resolved against the folder of `path`. The decoded model is on `onnx` for structure detection.
 */
export async function readOnnx(src: ByteSource, path: string): Promise<ModelFile> {
  const file = src.name;
  const onnx = await decodeModelFromSource(src);
  if (onnx.irVersion === undefined) throw new ModelFormatError(file, 'not an ONNX model: ir_version is missing');
  const graph = onnx.graph;
  if (graph === undefined) throw new ModelFormatError(file, 'not an ONNX model: it has no graph');
  if (onnx.opsetImport.length === 0) throw new ModelFormatError(file, 'not an ONNX model: opset_import is missing');
  const warnings: string[] = [];
  const modelDir = nodePath.dirname(nodePath.resolve(path));
  const tensors: Tensor[] = [];
  for (const [i, t] of graph.initializer.entries()) {
    const tensor = await initializerTensor(file, modelDir, t, i, warnings);
    if (tensor !== undefined) tensors.push(tensor);
  }
  return {
    path,
    format: 'onnx',
    tensors,
    metadata: modelMetadata(onnx),
    warnings,
    onnx,
    close: () => src.close(),
  };
}
