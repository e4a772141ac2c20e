import type { SourceSlice } from './protobuf';
import type { DType } from './tensor';

/*
 * The parts of onnx.proto that RepLens reads and writes, in camelCase.
 * Optional scalar fields are undefined when absent (proto2 keeps presence, and a round trip must
 * not invent fields); repeated fields are arrays, empty when absent. int64 values that are counts
 * or sizes are numbers (the decoder rejects unsafe ones); attribute ints stay bigint because
 * exporters store INT64_MAX there (e.g. Slice ends). Fields RepLens does not model are kept in
 * `unknownFields` as encoded bytes and written back after the modelled ones.
 */

export interface UnknownFields {
  unknownFields?: Uint8Array[];
}

export interface OnnxModel extends UnknownFields {
  irVersion?: number;
  producerName?: string;
  producerVersion?: string;
  domain?: string;
  modelVersion?: number;
  docString?: string;
  graph?: OnnxGraph;
  opsetImport: OnnxOperatorSetId[];
  metadataProps: OnnxStringStringEntry[];
}

export interface OnnxOperatorSetId extends UnknownFields {
  domain?: string;
  version?: number;
}

export interface OnnxStringStringEntry extends UnknownFields {
  key?: string;
  value?: string;
}

export interface OnnxGraph extends UnknownFields {
  node: OnnxNode[];
  name?: string;
  initializer: OnnxTensor[];
  docString?: string;
  input: OnnxValueInfo[];
  output: OnnxValueInfo[];
  valueInfo: OnnxValueInfo[];
}

export interface OnnxNode extends UnknownFields {
  input: string[];
  output: string[];
  name?: string;
  opType?: string;
  attribute: OnnxAttribute[];
  docString?: string;
  domain?: string;
}

export interface OnnxAttribute extends UnknownFields {
  name?: string;
  f?: number;
  i?: bigint;
  s?: Uint8Array;
  t?: OnnxTensor;
  g?: OnnxGraph;
  floats: number[];
  ints: bigint[];
  strings: Uint8Array[];
  tensors: OnnxTensor[];
  graphs: OnnxGraph[];
  docString?: string;
  tp?: OnnxType;
  typeProtos: OnnxType[];
  /** AttributeProto.AttributeType. */
  type?: number;
}

export interface OnnxTensor extends UnknownFields {
  dims: number[];
  /** TensorProto.DataType, see ONNX_DATA_TYPE. */
  dataType?: number;
  /** Segment message, kept encoded: RepLens never reads chunked tensors. */
  segment?: Uint8Array;
  floatData: number[];
  int32Data: number[];
  stringData: Uint8Array[];
  int64Data: bigint[];
  name?: string;
  /** In memory, or a range of the model file when the model was read from a file. */
  rawData?: Uint8Array | SourceSlice;
  doubleData: number[];
  uint64Data: bigint[];
  docString?: string;
  externalData: OnnxStringStringEntry[];
  /** 0 DEFAULT, 1 EXTERNAL. */
  dataLocation?: number;
}

export interface OnnxValueInfo extends UnknownFields {
  name?: string;
  type?: OnnxType;
  docString?: string;
}

/** TypeProto; only the tensor variant is modelled, the others stay in unknownFields. */
export interface OnnxType extends UnknownFields {
  tensorType?: OnnxTensorType;
}

/** A TensorProto with `fields` set and every repeated field empty, as a decoder or a builder starts one. */
export function newOnnxTensor(fields: Partial<OnnxTensor> = {}): OnnxTensor {
  return { dims: [], floatData: [], int32Data: [], stringData: [], int64Data: [], doubleData: [], uint64Data: [], externalData: [], ...fields };
}

/** An INT or INTS attribute (AttributeProto.AttributeType 2 and 7). */
export function newOnnxAttribute(name: string, type: 'INT' | 'INTS', values: number[]): OnnxAttribute {
  const base = { name, floats: [], ints: [], strings: [], tensors: [], graphs: [], typeProtos: [] };
  return type === 'INT' ? { ...base, type: 2, i: BigInt(values[0]) } : { ...base, type: 7, ints: values.map(BigInt) };
}

export interface OnnxTensorType extends UnknownFields {
  elemType?: number;
  shape?: OnnxShape;
}

export interface OnnxShape extends UnknownFields {
  dim: OnnxDimension[];
}

export interface OnnxDimension extends UnknownFields {
  dimValue?: number;
  dimParam?: string;
}

/** TensorProto.DataType codes RepLens reads, and the DType each becomes. */
export const ONNX_DATA_TYPE: Readonly<Record<number, { name: string; dtype: DType }>> = {
  1: { name: 'FLOAT', dtype: 'float32' },
  2: { name: 'UINT8', dtype: 'uint8' },
  3: { name: 'INT8', dtype: 'int8' },
  5: { name: 'INT16', dtype: 'int16' },
  6: { name: 'INT32', dtype: 'int32' },
  7: { name: 'INT64', dtype: 'int64' },
  9: { name: 'BOOL', dtype: 'bool' },
  10: { name: 'FLOAT16', dtype: 'float16' },
  11: { name: 'DOUBLE', dtype: 'float64' },
  16: { name: 'BFLOAT16', dtype: 'bfloat16' },
};

/** Names of the other codes, for error messages. */
export const ONNX_OTHER_DATA_TYPES: Readonly<Record<number, string>> = {
  0: 'UNDEFINED',
  4: 'UINT16',
  8: 'STRING',
  12: 'UINT32',
  13: 'UINT64',
  14: 'COMPLEX64',
  15: 'COMPLEX128',
  17: 'FLOAT8E4M3FN',
  18: 'FLOAT8E4M3FNUZ',
  19: 'FLOAT8E5M2',
  20: 'FLOAT8E5M2FNUZ',
  21: 'UINT4',
  22: 'INT4',
  23: 'FLOAT4E2M1',
};
