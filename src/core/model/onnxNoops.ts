import { GraphIndex, intAttribute, isDefaultDomain } from './onnxGraph';

/*
 * Nodes whose output equals one of their inputs, which exporters leave in a graph: torch writes
 * Add(x, 0) for MobileOne's `out = 0; out += branch(x)`, some exporters keep Identity and
 * inference-mode Dropout nodes. Detection looks through them and fusion removes them with the
 * block. A no-op that rests on a constant (Add 0, Sub 0, Mul 1, Div 1, Dropout's training_mode)
 * is one only if the constant holds that value everywhere and cannot broadcast the other input
 * to a larger shape.
 */

/** A constant the node is a no-op only with: every element must equal `equals`. */
export interface ExpectedConstant {
  tensor: string;
  equals: number;
}

export interface NoOp {
  /** The input whose value the node's output repeats. */
  through: string;
  /** Whether the node rests on a constant operand (Add 0, Mul 1, …) rather than being an Identity or a Dropout. */
  byConstant: boolean;
  /**
   * Constants whose data is still in the file, so detection could not read them: the node is
   * a no-op only if each holds its value everywhere, and fusion reads and checks them first.
   */
  unverified: ExpectedConstant[];
  /** A constant of shape [C, 1, 1] or [1, C, 1, 1] broadcasts per channel: the tensor passed through must have C channels. */
  channels?: number;
}

/**
 * The channel count a constant of `dims` needs of a 4-D N×C×H×W tensor to leave its shape
 * unchanged when broadcast with it (1: any), or undefined when it would broadcast the tensor
 * to a larger shape (more than 4 dimensions, or a size other than 1 off the channel axis).
 */
function broadcastChannels(dims: readonly number[]): number | undefined {
  if (dims.length > 4) return undefined;
  const channelAxis = dims.length - 3;
  let channels = 1;
  for (let d = 0; d < dims.length; d++) {
    if (d === channelAxis) channels = dims[d];
    else if (dims[d] !== 1) return undefined;
  }
  return channels >= 1 ? channels : undefined;
}

function byConstant(ix: GraphIndex, through: string, constant: string, equals: number): NoOp | undefined {
  const c = ix.constant(constant);
  if (c === undefined || ix.constant(through) !== undefined) return undefined;
  const channels = broadcastChannels(c.dims);
  if (channels === undefined) return undefined;
  if (c.values !== undefined && !c.values.every((v) => v === equals)) return undefined;
  return {
    through,
    byConstant: true,
    unverified: c.values === undefined ? [{ tensor: constant, equals }] : [],
    ...(channels > 1 ? { channels } : {}),
  };
}

/** Of a commutative op, the operand that holds `equals` (either order). */
function eitherOrder(ix: GraphIndex, inputs: readonly string[], equals: number): NoOp | undefined {
  if (inputs.length !== 2 || inputs.some((s) => s === '')) return undefined;
  return byConstant(ix, inputs[0], inputs[1], equals) ?? byConstant(ix, inputs[1], inputs[0], equals);
}

/** What node `i` passes through unchanged, if it is a no-op. */
export function noOp(ix: GraphIndex, i: number | undefined): NoOp | undefined {
  if (i === undefined) return undefined;
  const node = ix.node(i);
  if (!isDefaultDomain(node) || node.output.length === 0 || node.output[0] === '') return undefined;
  const [x, second] = node.input;
  switch (node.opType) {
    case 'Identity':
      return node.input.length === 1 && x !== '' && node.output.length === 1 ? { through: x, byConstant: false, unverified: [] } : undefined;
    case 'Dropout': {
      // Inference-mode dropout passes its input through; its mask output, if named, must be unread.
      const mask = node.output[1];
      if (!x || node.output.length > 2 || (mask && (ix.readers(mask).length > 0 || ix.isPinned(mask)))) return undefined;
      if (intAttribute(node, 'is_test') === 0) return undefined;
      const training = node.input[2];
      if (!training) return { through: x, byConstant: false, unverified: [] };
      const c = ix.constant(training);
      if (c === undefined || (c.values !== undefined && c.values.some((v) => v !== 0))) return undefined;
      return { through: x, byConstant: false, unverified: c.values === undefined ? [{ tensor: training, equals: 0 }] : [] };
    }
    case 'Add':
      return node.output.length === 1 ? eitherOrder(ix, node.input, 0) : undefined;
    case 'Mul':
      return node.output.length === 1 ? eitherOrder(ix, node.input, 1) : undefined;
    case 'Sub':
      return node.output.length === 1 && node.input.length === 2 && x && second ? byConstant(ix, x, second, 0) : undefined;
    case 'Div':
      return node.output.length === 1 && node.input.length === 2 && x && second ? byConstant(ix, x, second, 1) : undefined;
    default:
      return undefined;
  }
}

/**
 * The tensor `tensor` is an alias of through no-ops whose constants were read (a no-op that
 * rests on a constant still in the file is not looked through here: nothing would check it).
 */
export function aliasRoot(ix: GraphIndex, tensor: string): { root: string; nodes: number[] } {
  const nodes: number[] = [];
  let t = tensor;
  for (;;) {
    const p = ix.producer.get(t);
    const n = noOp(ix, p);
    if (p === undefined || n === undefined || n.unverified.length > 0 || nodes.includes(p)) return { root: t, nodes };
    nodes.push(p);
    t = n.through;
  }
}
