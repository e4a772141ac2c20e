import type { ByteSource } from './byteSource';
import { ModelFormatError, truncatedReason } from './errors';
import {
  type OnnxAttribute,
  type OnnxDimension,
  type OnnxGraph,
  type OnnxModel,
  type OnnxNode,
  type OnnxOperatorSetId,
  type OnnxShape,
  type OnnxStringStringEntry,
  type OnnxTensor,
  type OnnxTensorType,
  type OnnxType,
  type OnnxValueInfo,
  newOnnxTensor,
} from './onnxModel';
import { decodeInto, MAX_DEPTH, ProtoReader, ProtoWriter, Wire, type FieldSpecs } from './protobuf';

/**
 * The ONNX protobuf codec: ModelProto and everything in it, decoded from bytes or walked in a file
 * (leaving raw_data where it is) and encoded back in the order protobuf's own serializers use.
 * What a model file means to RepLens (its tensors, metadata) is onnx.ts's.
 */

const { Varint, Fixed32, Fixed64, Len } = Wire;

// ---------------------------------------------------------------------------------------------
// Decoding. Field numbers are those of onnx.proto.

const newModel = (): OnnxModel => ({ opsetImport: [], metadataProps: [] });
const newGraph = (): OnnxGraph => ({ node: [], initializer: [], input: [], output: [], valueInfo: [] });
const newNode = (): OnnxNode => ({ input: [], output: [], attribute: [] });
const newAttribute = (): OnnxAttribute => ({ floats: [], ints: [], strings: [], tensors: [], graphs: [], typeProtos: [] });

const readInt32 = (r: ProtoReader): number => r.int32();
const readInt64 = (r: ProtoReader): bigint => r.int64();
const readInt64Number = (r: ProtoReader): number => r.int64Number();
const readUint64 = (r: ProtoReader): bigint => r.uint64();
const readFloat = (r: ProtoReader): number => r.float();
const readDouble = (r: ProtoReader): number => r.double();

const entryFields: FieldSpecs<OnnxStringStringEntry> = {
  1: [Len, (m, r) => (m.key = r.string())],
  2: [Len, (m, r) => (m.value = r.string())],
};
const decodeEntry = (r: ProtoReader): OnnxStringStringEntry => decodeInto(r.message(), {}, entryFields);

const opsetFields: FieldSpecs<OnnxOperatorSetId> = {
  1: [Len, (m, r) => (m.domain = r.string())],
  2: [Varint, (m, r) => (m.version = r.int64Number())],
};

const dimensionFields: FieldSpecs<OnnxDimension> = {
  1: [Varint, (m, r) => (m.dimValue = r.int64Number())],
  2: [Len, (m, r) => (m.dimParam = r.string())],
};

const shapeFields: FieldSpecs<OnnxShape> = {
  1: [Len, (m, r) => m.dim.push(decodeInto(r.message(), {}, dimensionFields))],
};

const tensorTypeFields: FieldSpecs<OnnxTensorType> = {
  1: [Varint, (m, r) => (m.elemType = r.int32())],
  2: [Len, (m, r) => (m.shape = decodeInto(r.message(), { dim: [] }, shapeFields))],
};

const typeFields: FieldSpecs<OnnxType> = {
  1: [Len, (m, r) => (m.tensorType = decodeInto(r.message(), {}, tensorTypeFields))],
};
const decodeType = (r: ProtoReader): OnnxType => decodeInto(r.message(), {}, typeFields);

const valueInfoFields: FieldSpecs<OnnxValueInfo> = {
  1: [Len, (m, r) => (m.name = r.string())],
  2: [Len, (m, r) => (m.type = decodeType(r))],
  3: [Len, (m, r) => (m.docString = r.string())],
};

const tensorFields: FieldSpecs<OnnxTensor> = {
  1: [Varint, (m, r, w) => r.repeated(w, readInt64Number, m.dims), true],
  2: [Varint, (m, r) => (m.dataType = r.int32())],
  3: [Len, (m, r) => (m.segment = r.bytes())],
  4: [Fixed32, (m, r, w) => r.repeated(w, readFloat, m.floatData), true],
  5: [Varint, (m, r, w) => r.repeated(w, readInt32, m.int32Data), true],
  6: [Len, (m, r) => m.stringData.push(r.bytes())],
  7: [Varint, (m, r, w) => r.repeated(w, readInt64, m.int64Data), true],
  8: [Len, (m, r) => (m.name = r.string())],
  9: [Len, (m, r) => (m.rawData = r.bytes())],
  10: [Fixed64, (m, r, w) => r.repeated(w, readDouble, m.doubleData), true],
  11: [Varint, (m, r, w) => r.repeated(w, readUint64, m.uint64Data), true],
  12: [Len, (m, r) => (m.docString = r.string())],
  13: [Len, (m, r) => m.externalData.push(decodeEntry(r))],
  14: [Varint, (m, r) => (m.dataLocation = r.int32())],
};
const decodeTensor = (r: ProtoReader): OnnxTensor => decodeInto(r.message(), newOnnxTensor(), tensorFields);

// Attributes and graphs refer to each other (subgraphs of If/Loop), hence the function declarations.
function decodeGraph(r: ProtoReader): OnnxGraph {
  return decodeInto(r.message(), newGraph(), graphFields);
}

const attributeFields: FieldSpecs<OnnxAttribute> = {
  1: [Len, (m, r) => (m.name = r.string())],
  2: [Fixed32, (m, r) => (m.f = r.float())],
  3: [Varint, (m, r) => (m.i = r.int64())],
  4: [Len, (m, r) => (m.s = r.bytes())],
  5: [Len, (m, r) => (m.t = decodeTensor(r))],
  6: [Len, (m, r) => (m.g = decodeGraph(r))],
  7: [Fixed32, (m, r, w) => r.repeated(w, readFloat, m.floats), true],
  8: [Varint, (m, r, w) => r.repeated(w, readInt64, m.ints), true],
  9: [Len, (m, r) => m.strings.push(r.bytes())],
  10: [Len, (m, r) => m.tensors.push(decodeTensor(r))],
  11: [Len, (m, r) => m.graphs.push(decodeGraph(r))],
  13: [Len, (m, r) => (m.docString = r.string())],
  14: [Len, (m, r) => (m.tp = decodeType(r))],
  15: [Len, (m, r) => m.typeProtos.push(decodeType(r))],
  20: [Varint, (m, r) => (m.type = r.int32())],
};

const nodeFields: FieldSpecs<OnnxNode> = {
  1: [Len, (m, r) => m.input.push(r.string())],
  2: [Len, (m, r) => m.output.push(r.string())],
  3: [Len, (m, r) => (m.name = r.string())],
  4: [Len, (m, r) => (m.opType = r.string())],
  5: [Len, (m, r) => m.attribute.push(decodeInto(r.message(), newAttribute(), attributeFields))],
  6: [Len, (m, r) => (m.docString = r.string())],
  7: [Len, (m, r) => (m.domain = r.string())],
};

const graphFields: FieldSpecs<OnnxGraph> = {
  1: [Len, (m, r) => m.node.push(decodeInto(r.message(), newNode(), nodeFields))],
  2: [Len, (m, r) => (m.name = r.string())],
  5: [Len, (m, r) => m.initializer.push(decodeTensor(r))],
  10: [Len, (m, r) => (m.docString = r.string())],
  11: [Len, (m, r) => m.input.push(decodeInto(r.message(), {}, valueInfoFields))],
  12: [Len, (m, r) => m.output.push(decodeInto(r.message(), {}, valueInfoFields))],
  13: [Len, (m, r) => m.valueInfo.push(decodeInto(r.message(), {}, valueInfoFields))],
};

const modelFields: FieldSpecs<OnnxModel> = {
  1: [Varint, (m, r) => (m.irVersion = r.int64Number())],
  2: [Len, (m, r) => (m.producerName = r.string())],
  3: [Len, (m, r) => (m.producerVersion = r.string())],
  4: [Len, (m, r) => (m.domain = r.string())],
  5: [Varint, (m, r) => (m.modelVersion = r.int64Number())],
  6: [Len, (m, r) => (m.docString = r.string())],
  7: [Len, (m, r) => (m.graph = decodeGraph(r))],
  8: [Len, (m, r) => m.opsetImport.push(decodeInto(r.message(), {}, opsetFields))],
  14: [Len, (m, r) => m.metadataProps.push(decodeEntry(r))],
};

/**
 * Decodes a ModelProto held in memory. Byte fields (raw_data included) are views into `bytes`,
 * so nothing large is copied and `bytes` must stay unchanged while the model is used.
 */
export function decodeOnnxModel(bytes: Uint8Array, file = '<memory>'): OnnxModel {
  return decodeInto(new ProtoReader(file, bytes), newModel(), modelFields);
}

// ---------------------------------------------------------------------------------------------
// Decoding from a file without reading raw_data. The model, its graph and each initializer are
// walked field by field; every other field is read whole and handed to the decoders above.

/** Small reads (tags, nodes) come from a cached window so a graph of many nodes costs few reads. */
class SourceWindow {
  private start = 0;
  private bytes: Uint8Array = new Uint8Array(0);
  private static readonly SIZE = 1 << 20;

  constructor(readonly src: ByteSource) {}

  /** Bytes [offset, offset+length) as a view that is valid until the next call. */
  async view(offset: number, length: number): Promise<Uint8Array> {
    if (offset < this.start || offset + length > this.start + this.bytes.length) {
      this.start = offset;
      this.bytes = await this.src.read(offset, Math.max(length, Math.min(SourceWindow.SIZE, this.src.size - offset)));
    }
    return this.bytes.subarray(offset - this.start, offset - this.start + length);
  }

  /** Bytes the caller may keep: a copy, so decoded fields never pin a whole window. */
  async copy(offset: number, length: number): Promise<Uint8Array> {
    if (length > SourceWindow.SIZE / 4) return this.src.read(offset, length);
    return (await this.view(offset, length)).slice();
  }
}

/** Handles a length-delimited field whose payload [start, end) is walked rather than read whole. */
type WalkedField<T> = (m: T, start: number, end: number, depth: number) => Promise<void>;

async function decodeFromSource<T extends { unknownFields?: Uint8Array[] }>(
  win: SourceWindow,
  start: number,
  end: number,
  depth: number,
  m: T,
  specs: FieldSpecs<T>,
  specials: Readonly<Record<number, WalkedField<T>>>,
): Promise<T> {
  const file = win.src.name;
  if (depth > MAX_DEPTH) throw new ModelFormatError(file, `messages nested deeper than ${MAX_DEPTH} at byte ${start}`);
  // Only the model itself reaches the end of the file: a field of it that runs past `end` was cut
  // short with the file. A field inside a message that runs past the message's own end is corrupt instead.
  const cut = (evidence: string): never => {
    throw new ModelFormatError(file, truncatedReason(win.src.size, 'an ONNX model', evidence));
  };
  const runs = (field: number, from: number, to: number) => `${field === 7 ? 'its graph (field 7)' : `field ${field}`} runs from byte ${from} to byte ${to}`;
  let pos = start;
  while (pos < end) {
    // A tag and a varint take at most 20 bytes.
    const head = new ProtoReader(file, await win.view(pos, Math.min(20, end - pos)), 0, undefined, depth, pos);
    let field: number;
    let wire: number;
    let len: number;
    try {
      ({ field, wire } = head.tag());
      // Only the extent of the field is needed here; a length is checked against `end` below.
      len = wire === Len ? head.uint() : (head.skip(wire), 0);
    } catch (e) {
      if (depth === 0 && pos + 20 > end && e instanceof ModelFormatError && e.reason.startsWith('truncated')) cut(`the field at byte ${pos} is cut off`);
      throw e;
    }
    const special = specials[field];
    if (wire === Len && special !== undefined) {
      const valueStart = pos + head.pos;
      if (len > end - valueStart) {
        if (depth === 0) cut(runs(field, pos, valueStart + len));
        head.fail(`truncated: field ${field} needs ${len} bytes, ${end - valueStart} left`);
      }
      await special(m, valueStart, valueStart + len, depth + 1);
      pos = valueStart + len;
      continue;
    }
    const fieldEnd = pos + head.pos + len;
    if (fieldEnd > end) {
      if (depth === 0) cut(runs(field, pos, fieldEnd));
      head.fail(`truncated: field ${field} ends at byte ${fieldEnd}, past its message's end ${end}`, 0);
    }
    const bytes = await win.copy(pos, fieldEnd - pos);
    decodeInto(new ProtoReader(file, bytes, 0, bytes.length, depth, pos), m, specs);
    pos = fieldEnd;
  }
  return m;
}

/** Like decodeOnnxModel, but initializer raw_data is recorded as ranges of `src` instead of being read. */
export function decodeModelFromSource(src: ByteSource): Promise<OnnxModel> {
  const win = new SourceWindow(src);
  const tensorSpecials: Record<number, WalkedField<OnnxTensor>> = {
    9: async (t, start, end) => {
      t.rawData = { source: src, offset: start, length: end - start };
    },
  };
  const graphSpecials: Record<number, WalkedField<OnnxGraph>> = {
    5: async (g, start, end, depth) => {
      g.initializer.push(await decodeFromSource(win, start, end, depth, newOnnxTensor(), tensorFields, tensorSpecials));
    },
  };
  const modelSpecials: Record<number, WalkedField<OnnxModel>> = {
    7: async (m, start, end, depth) => {
      m.graph = await decodeFromSource(win, start, end, depth, newGraph(), graphFields, graphSpecials);
    },
  };
  return decodeFromSource(win, 0, src.size, 0, newModel(), modelFields, modelSpecials);
}

// ---------------------------------------------------------------------------------------------
// Encoding, in field-number order with unknown fields last: the order protobuf's own serializers
// use, so a model they wrote comes back byte for byte.

function optString(w: ProtoWriter, field: number, v: string | undefined): void {
  if (v !== undefined) w.string(field, v);
}

function optInt(w: ProtoWriter, field: number, v: number | bigint | undefined): void {
  if (v !== undefined) w.int(field, v);
}

function withUnknown(w: ProtoWriter, m: { unknownFields?: Uint8Array[] }): ProtoWriter {
  for (const u of m.unknownFields ?? []) w.raw(u);
  return w;
}

function encodeEntry(e: OnnxStringStringEntry): ProtoWriter {
  const w = new ProtoWriter();
  optString(w, 1, e.key);
  optString(w, 2, e.value);
  return withUnknown(w, e);
}

function encodeType(t: OnnxType): ProtoWriter {
  const w = new ProtoWriter();
  const tt = t.tensorType;
  if (tt !== undefined) {
    const tw = new ProtoWriter();
    optInt(tw, 1, tt.elemType);
    if (tt.shape !== undefined) {
      const sw = new ProtoWriter();
      for (const d of tt.shape.dim) {
        const dw = new ProtoWriter();
        optInt(dw, 1, d.dimValue);
        optString(dw, 2, d.dimParam);
        sw.message(1, withUnknown(dw, d));
      }
      tw.message(2, withUnknown(sw, tt.shape));
    }
    w.message(1, withUnknown(tw, tt));
  }
  return withUnknown(w, t);
}

function encodeValueInfo(v: OnnxValueInfo): ProtoWriter {
  const w = new ProtoWriter();
  optString(w, 1, v.name);
  if (v.type !== undefined) w.message(2, encodeType(v.type));
  optString(w, 3, v.docString);
  return withUnknown(w, v);
}

function encodeTensor(t: OnnxTensor): ProtoWriter {
  const w = new ProtoWriter();
  // dims is not declared packed in onnx.proto, so protobuf writes one tag per value.
  for (const d of t.dims) w.int(1, d);
  optInt(w, 2, t.dataType);
  if (t.segment !== undefined) w.bytes(3, t.segment);
  w.packedFloats(4, t.floatData);
  w.packedInts(5, t.int32Data);
  for (const s of t.stringData) w.bytes(6, s);
  w.packedInts(7, t.int64Data);
  optString(w, 8, t.name);
  if (t.rawData !== undefined) w.bytes(9, t.rawData);
  w.packedDoubles(10, t.doubleData);
  w.packedInts(11, t.uint64Data);
  optString(w, 12, t.docString);
  for (const e of t.externalData) w.message(13, encodeEntry(e));
  optInt(w, 14, t.dataLocation);
  return withUnknown(w, t);
}

function encodeAttribute(a: OnnxAttribute): ProtoWriter {
  const w = new ProtoWriter();
  optString(w, 1, a.name);
  if (a.f !== undefined) w.float(2, a.f);
  optInt(w, 3, a.i);
  if (a.s !== undefined) w.bytes(4, a.s);
  if (a.t !== undefined) w.message(5, encodeTensor(a.t));
  if (a.g !== undefined) w.message(6, encodeGraph(a.g));
  for (const f of a.floats) w.float(7, f);
  for (const i of a.ints) w.int(8, i);
  for (const s of a.strings) w.bytes(9, s);
  for (const t of a.tensors) w.message(10, encodeTensor(t));
  for (const g of a.graphs) w.message(11, encodeGraph(g));
  optString(w, 13, a.docString);
  if (a.tp !== undefined) w.message(14, encodeType(a.tp));
  for (const t of a.typeProtos) w.message(15, encodeType(t));
  optInt(w, 20, a.type);
  return withUnknown(w, a);
}

function encodeNode(n: OnnxNode): ProtoWriter {
  const w = new ProtoWriter();
  for (const s of n.input) w.string(1, s);
  for (const s of n.output) w.string(2, s);
  optString(w, 3, n.name);
  optString(w, 4, n.opType);
  for (const a of n.attribute) w.message(5, encodeAttribute(a));
  optString(w, 6, n.docString);
  optString(w, 7, n.domain);
  return withUnknown(w, n);
}

function encodeGraph(g: OnnxGraph): ProtoWriter {
  const w = new ProtoWriter();
  for (const n of g.node) w.message(1, encodeNode(n));
  optString(w, 2, g.name);
  for (const t of g.initializer) w.message(5, encodeTensor(t));
  optString(w, 10, g.docString);
  for (const v of g.input) w.message(11, encodeValueInfo(v));
  for (const v of g.output) w.message(12, encodeValueInfo(v));
  for (const v of g.valueInfo) w.message(13, encodeValueInfo(v));
  return withUnknown(w, g);
}

/** Encodes a model; raw_data left in a file is read from there while assembling. */
export async function encodeOnnxModel(model: OnnxModel): Promise<Uint8Array> {
  const w = new ProtoWriter();
  optInt(w, 1, model.irVersion);
  optString(w, 2, model.producerName);
  optString(w, 3, model.producerVersion);
  optString(w, 4, model.domain);
  optInt(w, 5, model.modelVersion);
  optString(w, 6, model.docString);
  if (model.graph !== undefined) w.message(7, encodeGraph(model.graph));
  for (const o of model.opsetImport) {
    const ow = new ProtoWriter();
    optString(ow, 1, o.domain);
    optInt(ow, 2, o.version);
    w.message(8, withUnknown(ow, o));
  }
  for (const e of model.metadataProps) w.message(14, encodeEntry(e));
  return withUnknown(w, model).finish();
}
