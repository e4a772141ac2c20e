import { newOnnxTensor, type OnnxAttribute, type OnnxDimension, type OnnxGraph, type OnnxModel, type OnnxValueInfo } from '../formats/onnxModel';
import { IN_MODEL, type InitializerStore } from '../writers/externalData';

/** The opset every RepLens graph uses: Conv, BatchNormalization, Gemm and friends as of ONNX 1.8. */
export const OPSET = 13;
/** The IR version that goes with opset 13. */
export const IR_VERSION = 7;

const FLOAT = 1;
// AttributeProto.AttributeType codes.
const ATTR_FLOAT = 1;
const ATTR_INT = 2;
const ATTR_INTS = 7;

export type AttrValue = number | readonly number[];

/** A dimension: a fixed size, a symbolic name that ONNX Runtime binds at run time, or unknown (null). */
export type Dim = number | string | null;

function attribute(name: string, value: AttrValue, float: boolean): OnnxAttribute {
  const a: OnnxAttribute = { name, floats: [], ints: [], strings: [], tensors: [], graphs: [], typeProtos: [] };
  if (typeof value === 'number') {
    if (float) Object.assign(a, { f: value, type: ATTR_FLOAT });
    else Object.assign(a, { i: BigInt(value), type: ATTR_INT });
  } else {
    Object.assign(a, { ints: value.map((v) => BigInt(v)), type: ATTR_INTS });
  }
  return a;
}

function valueInfo(name: string, dims: readonly Dim[]): OnnxValueInfo {
  const dim = dims.map((d): OnnxDimension => (typeof d === 'number' ? { dimValue: d } : d === null ? {} : { dimParam: d }));
  return { name, type: { tensorType: { elemType: FLOAT, shape: { dim } } } };
}

/**
 * Assembles a float32 ONNX graph node by node. Names are checked for uniqueness here, because
 * ONNX Runtime's own message for a duplicate name does not say which part of the model made it.
 */
export class OnnxBuilder {
  private readonly graph: OnnxGraph = { node: [], initializer: [], input: [], output: [], valueInfo: [] };
  private readonly names = new Set<string>();

  constructor(
    private readonly graphName: string,
    /** Where initializer bytes go: into the model, or to an external data file as they are made. */
    private readonly store: InitializerStore = IN_MODEL,
  ) {}

  private claim(name: string): string {
    if (this.names.has(name)) throw new Error(`graph ${this.graphName}: the name '${name}' is used twice`);
    this.names.add(name);
    return name;
  }

  input(name: string, dims: readonly Dim[]): string {
    this.graph.input.push(valueInfo(this.claim(name), dims));
    return name;
  }

  /** Marks an existing value as a graph output; onnx.checker wants its rank. */
  output(name: string, dims: readonly Dim[]): void {
    if (!this.names.has(name)) throw new Error(`graph ${this.graphName}: output '${name}' is not produced by any node`);
    this.graph.output.push(valueInfo(name, dims));
  }

  /**
   * A float32 initializer, its bytes little-endian (as ONNX requires and every supported host is),
   * handed to the store, which may keep them: `values` must not be written to afterwards.
   */
  async initializer(name: string, dims: readonly number[], values: Float32Array): Promise<string> {
    const count = dims.reduce((a, b) => a * b, 1);
    if (values.length !== count)
      throw new Error(`graph ${this.graphName}: initializer '${name}' has ${values.length} values, shape [${dims.join(', ')}] needs ${count}`);
    const tensor = newOnnxTensor({ name: this.claim(name), dims: [...dims], dataType: FLOAT });
    this.graph.initializer.push(tensor);
    await this.store.place(tensor, new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
    return name;
  }

  /**
   * Adds a node with one output named `output`; `floatAttrs` lists the attributes that are floats
   * (ONNX types every attribute, and epsilon must not become an int).
   */
  node(opType: string, inputs: readonly string[], output: string, attrs: Record<string, AttrValue> = {}, floatAttrs: readonly string[] = []): string {
    for (const i of inputs) if (!this.names.has(i)) throw new Error(`graph ${this.graphName}: ${opType} '${output}' reads '${i}', which nothing produces`);
    this.graph.node.push({
      name: output,
      opType,
      input: [...inputs],
      output: [this.claim(output)],
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v, floatAttrs.includes(k))),
    });
    return output;
  }

  finish(metadata: Record<string, string> = {}, docString?: string): OnnxModel {
    if (this.graph.output.length === 0) throw new Error(`graph ${this.graphName} has no outputs`);
    return {
      irVersion: IR_VERSION,
      producerName: 'RepLens',
      docString,
      graph: { ...this.graph, name: this.graphName },
      opsetImport: [{ domain: '', version: OPSET }],
      metadataProps: Object.entries(metadata).map(([key, value]) => ({ key, value })),
    };
  }
}
