import type { ModuleInfo } from '../formats/modelFile';
import { isFloatDType, type DType } from '../formats/tensor';
import { familyById } from '../model/families';
import { allBlocks, type Block, type ModelStructure } from '../model/structure';
import { fromText, readsOnly, sourcesText, wiringOf, type LayerWiring } from './yoloWiring';

/**
 * How the blocks of a state dict are wired into a graph. A state dict stores no graph, so
 * RepLens only chains blocks when the tensors leave no room for anything between them, and,
 * when the file is a pickled YOLO model whose modules say which layer each one reads (`f`, `i`),
 * only where that wiring says each block reads the one before it:
 * - classifier: a chain of blocks followed by the family's GAP → Linear head, nothing else in the file;
 * - chain: a chain of blocks; other layers (stem, neck, head) are left out of the graph;
 * - blockwise: every block is its own subgraph with its own input.
 */
export type Topology = 'classifier' | 'chain' | 'blockwise';

export interface TensorInfo {
  name: string;
  dtype: DType;
  shape: readonly number[];
}

export interface TopologyPlan {
  topology: Topology;
  /** In graph order (file order). */
  blocks: Block[];
  head?: { weight: string; bias: string; classes: number };
  /** Why this topology was chosen, for the report. */
  reason: string;
}

function classifierHead(structure: ModelStructure, outside: readonly TensorInfo[], last: Block): TopologyPlan['head'] {
  if (structure.family === 'unknown') return undefined;
  const names = familyById(structure.family).classifier ?? [];
  // Parameters only: integer tensors are counters (num_batches_tracked) or bookkeeping.
  const params = outside.filter((t) => isFloatDType(t.dtype));
  if (params.length !== 2) return undefined;
  for (const module of names) {
    const weight = params.find((t) => t.name === `${module}.weight` || t.name.endsWith(`.${module}.weight`));
    if (!weight) continue;
    const bias = params.find((t) => t.name === `${weight.name.slice(0, -'weight'.length)}bias`);
    const [classes, features] = weight.shape;
    if (bias && weight.shape.length === 2 && features === last.outChannels && bias.shape.length === 1 && bias.shape[0] === classes) {
      return { weight: weight.name, bias: bias.name, classes };
    }
  }
  return undefined;
}

const LISTED = 6;

/**
 * Why the module tree's wiring contradicts a chain, or undefined when it has none to say or
 * every block reads the one before it.
 */
function wiringBreak(blocks: readonly Block[], wiring: ReadonlyMap<string, LayerWiring>): string | undefined {
  const at = (b: Block) => wiring.get(b.name)!;
  const broken = blocks.findIndex((b, i) => i > 0 && !readsOnly(at(b), at(blocks[i - 1])));
  if (broken < 0) return undefined;
  const [prev, b] = [blocks[broken - 1], blocks[broken]];
  const listed = blocks
    .slice(0, LISTED)
    .map((x) => `${x.name} f = ${fromText(at(x))}`)
    .join(', ');
  return (
    `the module tree says which layer each block reads (YOLO's from-index f): ${listed}${blocks.length > LISTED ? ', …' : ''}; ` +
    `${b.name} (layer ${at(b).index}) reads ${sourcesText(at(b))}, not ${prev.name} (layer ${at(prev).index})`
  );
}

/**
 * Needs at least one block. `modules` is the file's pickled module tree (ModelFile.modules), when
 * it has one: YOLO-style `f`/`i` attributes on the blocks' modules then veto chains they contradict.
 */
export function planTopology(tensors: readonly TensorInfo[], structure: ModelStructure, modules?: readonly ModuleInfo[]): TopologyPlan {
  const blocks = allBlocks(structure);
  const blockwise = (reason: string): TopologyPlan => ({ topology: 'blockwise', blocks, reason: `each block is run on its own input: ${reason}` });

  const wiring = wiringOf(
    blocks.map((b) => b.name),
    modules,
  );
  const contradicted = wiring && wiringBreak(blocks, wiring);
  if (contradicted) return blockwise(contradicted);
  for (let i = 1; i < blocks.length; i++) {
    const [prev, b] = [blocks[i - 1], blocks[i]];
    if (b.inChannels !== prev.outChannels) return blockwise(`${b.name} takes ${b.inChannels} channels, ${prev.name} gives ${prev.outChannels}`);
  }
  const owner = new Map<string, number>();
  blocks.forEach((b, i) => b.tensors.forEach((t) => owner.set(t, i)));
  const owned = tensors.flatMap((t, i) => (owner.has(t.name) ? [i] : []));
  const [firstBlockTensor, lastBlockTensor] = [owned[0], owned[owned.length - 1]];
  let previousOwner = -1;
  for (let i = firstBlockTensor; i <= lastBlockTensor; i++) {
    const o = owner.get(tensors[i].name);
    if (o === undefined) {
      const next = blocks[previousOwner + 1];
      return blockwise(
        `'${tensors[i].name}' lies between ${blocks[previousOwner].name} and ${next?.name ?? 'the next block'}, so some layer sits between them`,
      );
    }
    if (o < previousOwner) return blockwise(`the tensors of ${blocks[previousOwner].name} and ${blocks[o].name} are interleaved`);
    previousOwner = o;
  }

  const outside = tensors.filter((t) => !owner.has(t.name));
  const head = classifierHead(structure, outside, blocks[blocks.length - 1]);
  if (head)
    return { topology: 'classifier', blocks, head, reason: `${blocks.length} blocks in a chain, then the classifier ${head.weight.replace(/\.weight$/, '')}` };
  const left = outside.filter((t) => isFloatDType(t.dtype));
  const leftOut =
    left.length === 0
      ? ''
      : `; ${left.length} tensors outside the blocks (${left
          .slice(0, 2)
          .map((t) => t.name)
          .join(', ')}${left.length > 2 ? ', …' : ''}) are not in the graph`;
  const wired = wiring && blocks.length > 1 ? " (the module tree says each reads the one before it: YOLO's f)" : '';
  return { topology: 'chain', blocks, reason: `${blocks.length} blocks in a chain${wired}${leftOut}` };
}
