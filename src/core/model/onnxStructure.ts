import type { OnnxGraph } from '../formats/onnxModel';
import { familyById, type FamilyLayout } from './families';
import { deployBlock, trainBlock, type OnnxBlock } from './onnxBlock';
import { GraphIndex, type InitializerMeta } from './onnxGraph';
import { findShapeMatches, matchNodes } from './onnxMatch';
import { namedBlocks } from './onnxNamedBlocks';
import { newNaming } from './onnxNaming';

/*
 * RepVGG-style blocks found in an ONNX graph by their shape: parallel branches — k×k convs (any
 * number of them, MobileOne's over-parameterized ones), smaller odd convs, BN of the input, the
 * input itself, an average pool — that all read one tensor and are summed by Add or Sum nodes,
 * with an optional BatchNormalization after the sum, looking through the no-op nodes exporters
 * leave (onnxNoops). Stride, groups, padding and eps are read from node attributes, so they are
 * facts. Names only label what the shape found (onnxNaming), except where the shape cannot tell:
 * a block of one conv, and nodes named like a block that do not form one (onnxNamedBlocks).
 *
 * onnxGraph      producers, readers and constants of the graph
 * onnxNoops      Identity, Dropout, Add 0, Mul 1, …
 * onnxBranches   one summand, read backwards from the sum; conv and pool facts
 * onnxMatch      sums of branches on one input, post BN
 * onnxBlock      the Block of a match, and why one conv could not express it
 * onnxNamedBlocks blocks found by family names
 */

export type { OnnxBlock } from './onnxBlock';
export type { InitializerMeta } from './onnxGraph';
export { namesReadIn } from './onnxGraph';
export { scopePath } from './onnxNaming';

/**
 * Every re-parameterizable block of the top-level graph, in graph order. `initializers` are the
 * file's tensors (initializers of types RepLens reads); a weight that is not one of them is no branch.
 */
export function detectOnnxBlocks(graph: OnnxGraph, initializers: readonly InitializerMeta[]): OnnxBlock[] {
  const ix = new GraphIndex(graph, new Map(initializers.map((t) => [t.name, t])));
  const order = new Map(initializers.map((t, i) => [t.name, i]));
  const naming = newNaming(graph, initializers);
  const matches = findShapeMatches(ix);
  const taken = new Set(matches.flatMap((m) => matchNodes(ix, m)));
  const found: { at: number; block: OnnxBlock }[] = matches.map((m) => ({ at: m.last, block: trainBlock(ix, m, naming, order) }));
  graph.node.forEach((_, i) => {
    if (!ix.isConv(i) || taken.has(i)) return;
    const block = deployBlock(ix, i, naming, order);
    if (block) {
      found.push({ at: i, block });
      taken.add(i);
    }
  });
  found.push(...namedBlocks(ix, naming, order, taken));
  const blocks = found.sort((a, b) => a.at - b.at).map((f) => f.block);
  joinSiblingFamilies(blocks);
  return blocks;
}

const sameNames = (f: FamilyLayout, g: FamilyLayout) =>
  f.dense.conv === g.dense.conv && f.oneByOne.conv === g.oneByOne.conv && f.identity === g.identity && f.deploy === g.deploy;

/**
 * Families with the same names (YOLOv6 QARepVGGBlock and QARepVGGBlockV2) differ in a branch only
 * some blocks of a model have (V2's AvgPool, beside the identity): where one block shows it, the
 * model is of that family, and so are its blocks without it (those with stride 2).
 */
function joinSiblingFamilies(blocks: OnnxBlock[]): void {
  const withPool = [...new Set(blocks.filter((b) => b.branches.some((x) => x.role === 'avgPool')).map((b) => b.family))].map(familyById);
  for (const b of blocks) {
    if (b.onnx?.familySource === 'none') continue;
    const f = familyById(b.family);
    const sibling = f.avgPool ? undefined : withPool.find((g) => g.avgPool !== undefined && g.id !== f.id && sameNames(f, g));
    if (sibling) b.family = sibling.id;
  }
}
