import { familyById, type FamilyId } from '../model/families';
import type { Topology } from '../graph/topology';

/**
 * What part of a model a parity check runs, in words. A checkpoint holds weights, not the code
 * that wires its layers, so RepLens runs its blocks (as a chain where nothing can sit between them,
 * else each on its own input) and, for a classifier, its head; a detector's other layers are code.
 */
export interface CheckedPart {
  /** One plain sentence ('checks the 3 RepConv blocks, each on its own input; …'). */
  sentence: string;
  /** How the input shape (--shape / ParityOptions.shape) maps onto the part's input(s). */
  shapeUse: string;
  /** For graphs RepLens builds: the block each graph input feeds and its channels, in graph order. */
  inputs?: { block: string; channels: number }[];
  /** What the blocks are called ('RepConv'). */
  noun?: string;
  topology: Topology | 'onnx';
}

export interface BlocksPart {
  topology: Topology;
  /** The blocks in graph order, named as the result names them, with their input channels. */
  blocks: readonly { name: string; family: FamilyId; inChannels: number }[];
  /** The classifier module after the chain, for the classifier topology. */
  head?: string;
  /** Whether the file holds floating-point tensors outside the blocks (and the head). */
  othersInFile: boolean;
  /** Where the blocks were read from: a checkpoint (no graph) or an ONNX file rebuilt block by block. */
  source: 'checkpoint' | 'onnx';
}

/** The short name of a family's block, as its own code calls it: 'RepConv', 'RepVGG', 'MobileOne'. */
function blockNoun(families: ReadonlySet<FamilyId>): string {
  if (families.size !== 1) return 're-parameterizable';
  return familyById([...families][0])
    .label.split(' ')
    .at(-1)!;
}

const isDetector = (families: ReadonlySet<FamilyId>) => [...families].every((f) => f.startsWith('yolov'));

function counted(n: number, noun: string): string {
  return n === 1 ? `the ${noun} block` : `the ${n} ${noun} blocks`;
}

const LISTED = 6;

export function blocksPart(part: BlocksPart): CheckedPart {
  const families = new Set(part.blocks.map((b) => b.family));
  const noun = blockNoun(families);
  const blocks = counted(part.blocks.length, noun);
  const first = part.blocks[0];
  const others =
    part.source === 'onnx'
      ? "the graph's other layers are not part of this check"
      : part.othersInFile
        ? `the ${isDetector(families) ? 'detector' : 'model'}'s other layers are not in the file as a graph`
        : 'the file holds no other layers';
  let sentence: string;
  let shapeUse: string;
  let inputs: CheckedPart['inputs'];
  const notImage = part.othersInFile || part.source === 'onnx' ? ', not the image the whole model takes' : '';
  if (part.topology === 'classifier') {
    sentence = `checks the whole model: ${blocks} in a chain, then the classifier${part.head ? ` (${part.head})` : ''}`;
    shapeUse = `--shape is the model's input: [batch, ${first.inChannels}, height, width]`;
    inputs = [{ block: first.name, channels: first.inChannels }];
  } else if (part.topology === 'chain') {
    sentence = `checks ${blocks} as one chain, from the input of ${first.name}; ${others}`;
    shapeUse = `--shape describes the input of ${first.name}, the first block of the chain${notImage}: [batch, ${first.inChannels}, height, width]`;
    inputs = [{ block: first.name, channels: first.inChannels }];
  } else {
    sentence = `checks ${blocks}, each on its own input; ${others}`;
    const listed =
      part.blocks
        .slice(0, LISTED)
        .map((b) => `${b.name} ${b.inChannels}`)
        .join(', ') + (part.blocks.length > LISTED ? ', …' : '');
    shapeUse =
      `--shape describes the blocks' inputs${notImage}: its batch, height and width are used for every block's input, ` +
      `each block with its own channels (${listed}), and its channels must be those of the first block, ${first.name}: [batch, ${first.inChannels}, height, width]`;
    inputs = part.blocks.map((b) => ({ block: b.name, channels: b.inChannels }));
  }
  return { sentence, shapeUse, inputs, noun, topology: part.topology };
}

/** An ONNX model run as it is (against itself with its blocks fused in place, or against another file). */
export function onnxPart(file: string, fusedInPlace: number | undefined): CheckedPart {
  return {
    sentence:
      fusedInPlace === undefined
        ? `checks the whole ONNX graph of ${file}, as it is`
        : `checks the whole ONNX graph, as it is and with its ${fusedInPlace === 1 ? 'block' : `${fusedInPlace} blocks`} fused in place`,
    shapeUse: "--shape fills the graph input's symbolic dimensions; fixed ones must match",
    topology: 'onnx',
  };
}

/**
 * The error for a shape whose channels contradict the first input of the checked part: what that
 * input is, that the shape describes it (not the image a detector takes), and the shape to pass.
 */
export function shapeChannelsMessage(part: CheckedPart, asked: readonly number[]): string | undefined {
  const first = part.inputs?.[0];
  if (!first || asked.length !== 4 || asked[1] === first.channels) return undefined;
  const fixed = [asked[0], first.channels, asked[2], asked[3]].join(',');
  return (
    `--shape ${asked.join(',')} asks for ${asked[1]} channels, but the part of the model this check runs starts at ${first.block}, ` +
    `${part.noun === undefined ? 'which takes' : `${/^[AEIOU]/i.test(part.noun) ? 'an' : 'a'} ${part.noun} block that takes`} ${first.channels} channels. ` +
    `RepLens ${part.sentence}. ${part.shapeUse}. Pass --shape ${fixed}`
  );
}
