import { type GraphIndex } from './onnxGraph';
import { walkTerm, type Term } from './onnxBranches';
import { aliasRoot, noOp } from './onnxNoops';

/*
 * Blocks found by shape. The sum of a block is a tree of Add/Sum nodes (any association and order)
 * and no-op nodes, each read by its parent alone; its leaves are the branches (onnxBranches).
 * Every branch must read one tensor, the block's input, possibly through no-ops. A BatchNormalization
 * that alone reads the sum (QARepVGG's post BN) and no-ops after it belong to the block too.
 */

export interface Match {
  /** The outermost node of the sum (a sum or a no-op); absent for a block of one branch found by its name. */
  root?: number;
  /** The node whose output is the block's result: the sum's outermost node, the post BN or a no-op after it. */
  last: number;
  /** The tensor every branch reads. */
  input: string;
  terms: Term[];
  sums: number[];
  /** No-ops of the sum and after it. */
  noops: number[];
  postBn?: number;
  /** No-ops between the input and a branch: they go with the block only where the block alone reads them. */
  aliases: number[];
}

function isTreeNode(ix: GraphIndex, i: number): boolean {
  return ix.isSum(i) || noOp(ix, i) !== undefined;
}

/** The sum or no-op that alone reads node `i`'s result (and, for a no-op, passes it on). */
function treeParent(ix: GraphIndex, i: number): number | undefined {
  const out = ix.node(i).output[0];
  const r = ix.soleReader(out);
  if (r === undefined) return undefined;
  const n = noOp(ix, r);
  if (n) return n.through === out ? r : undefined;
  return ix.isSum(r) ? r : undefined;
}

/** The tensors a tree node combines: the passed-through input of a no-op (Add x, 0 too), all inputs of a sum. */
function treeInputs(ix: GraphIndex, i: number): string[] {
  const n = noOp(ix, i);
  return n ? [n.through] : ix.node(i).input;
}

function treeChildren(ix: GraphIndex, i: number): number[] {
  const children: number[] = [];
  for (const t of treeInputs(ix, i)) {
    const p = ix.producer.get(t);
    if (p !== undefined && ix.readOnlyBy(t, i) && isTreeNode(ix, p)) children.push(p);
  }
  return children;
}

function flattenTree(ix: GraphIndex, root: number): { sums: number[]; noops: number[]; leaves: { tensor: string; reader: number }[] } {
  const sums: number[] = [];
  const noops: number[] = [];
  const leaves: { tensor: string; reader: number }[] = [];
  const visit = (i: number) => {
    (noOp(ix, i) ? noops : sums).push(i);
    const children = new Set(treeChildren(ix, i));
    for (const t of treeInputs(ix, i)) {
      const p = ix.producer.get(t);
      if (p !== undefined && children.has(p)) visit(p);
      else leaves.push({ tensor: t, reader: i });
    }
  };
  visit(root);
  return { sums, noops, leaves };
}

/** A no-op that rests on a constant read from the graph: torch's `0 + branch` when a block has one branch. */
function isProvenConstantNoOp(ix: GraphIndex, i: number): boolean {
  const n = noOp(ix, i);
  return n !== undefined && n.byConstant && n.unverified.length === 0;
}

/** The block whose sum ends at tree node `root`, if every leaf is a branch on one input. */
function matchAt(ix: GraphIndex, root: number): Match | undefined {
  const tree = flattenTree(ix, root);
  const terms = tree.leaves.map((l) => walkTerm(ix, l.tensor, l.reader));
  if (!terms.some((t) => t.kind === 'conv')) return undefined;
  const roots = terms.map((t) => aliasRoot(ix, t.input));
  const input = roots[0].root;
  if (!roots.every((r) => r.root === input)) return undefined;
  // One branch alone is a block only when the exporter's `0 + branch` says so.
  if (terms.length === 1 && !tree.noops.some((n) => isProvenConstantNoOp(ix, n))) return undefined;
  return { root, last: root, input, terms, sums: tree.sums, noops: tree.noops, aliases: [...new Set(roots.flatMap((r) => r.nodes))] };
}

/** Adds the BatchNormalization that alone reads the block's sum, and the no-ops after it. */
export function extendAfterSum(ix: GraphIndex, m: Match, allowBn = true): void {
  for (;;) {
    const out = ix.node(m.last).output[0];
    const r = ix.soleReader(out);
    if (r === undefined) return;
    if (allowBn && m.postBn === undefined && ix.isBn(r) && ix.node(r).input[0] === out) {
      m.postBn = r;
    } else if (noOp(ix, r)?.through === out) {
      m.noops.push(r);
    } else {
      return;
    }
    m.last = r;
  }
}

/** Every block found by shape, outermost sum first; a sum that is no block may still hold one in an inner sum. */
export function findShapeMatches(ix: GraphIndex): Match[] {
  const matches: Match[] = [];
  const tryAt = (root: number) => {
    const m = matchAt(ix, root);
    if (m) {
      extendAfterSum(ix, m);
      matches.push(m);
      return;
    }
    for (const child of treeChildren(ix, root)) tryAt(child);
  };
  ix.graph.node.forEach((_, i) => {
    if (isTreeNode(ix, i) && treeParent(ix, i) === undefined) tryAt(i);
  });
  return matches;
}

/** The block of one conv (with its BN and the no-ops after it), for a conv whose name says it is a block's only branch. */
export function singleBranchMatch(ix: GraphIndex, conv: number): Match | undefined {
  const term = { kind: 'conv' as const, conv, input: ix.node(conv).input[0], noops: [] };
  const m: Match = { last: conv, input: '', terms: [term], sums: [], noops: [], aliases: [] };
  // The BN right after the conv is the branch's own.
  const out = ix.node(conv).output[0];
  const r = ix.soleReader(out);
  if (ix.isBn(r) && ix.node(r).input[0] === out) {
    Object.assign(term, { bn: r });
    m.last = r;
  }
  extendAfterSum(ix, m, false);
  // A result summed with something else is a branch of a block that did not match, not a block.
  const after = ix.readers(ix.node(m.last).output[0]).map((i) => ix.node(i).opType);
  if (after.includes('Add') || after.includes('Sum')) return undefined;
  const root = aliasRoot(ix, term.input);
  return { ...m, input: root.root, aliases: root.nodes };
}

/**
 * Every node of the block: its sums, branches, post BN and no-ops, the input-side no-ops and
 * Constant nodes that only the block reads. Sorted in graph order.
 */
export function matchNodes(ix: GraphIndex, m: Match): number[] {
  const nodes = new Set<number>([...m.sums, ...m.noops, ...(m.postBn === undefined ? [] : [m.postBn])]);
  for (const t of m.terms) {
    for (const i of t.noops) nodes.add(i);
    if (t.kind === 'conv') {
      nodes.add(t.conv);
      if (t.bn !== undefined) nodes.add(t.bn);
    } else if (t.kind === 'bn') {
      nodes.add(t.bn);
    } else if (t.kind === 'pool') {
      nodes.add(t.pool);
      if (t.pad !== undefined) nodes.add(t.pad);
    }
  }
  // Input-side no-ops whose every reader goes with the block (nearest to the branches first).
  for (let changed = true; changed;) {
    changed = false;
    for (const a of m.aliases) {
      if (!nodes.has(a) && ix.node(a).output.every((o) => o === '' || ix.readOnlyWithin(o, nodes))) {
        nodes.add(a);
        changed = true;
      }
    }
  }
  for (const i of [...nodes]) {
    for (const input of ix.node(i).input) {
      const p = ix.producer.get(input);
      if (p !== undefined && !nodes.has(p) && ix.node(p).opType === 'Constant' && ix.node(p).output.every((o) => ix.readOnlyWithin(o, nodes))) nodes.add(p);
    }
  }
  return [...nodes].sort((a, b) => a - b);
}

/** Why the sum that node `i` belongs to is no block: what each of its branches reads. */
export function explainSum(ix: GraphIndex, i: number): string {
  let root = i;
  for (let p = treeParent(ix, root); p !== undefined; p = treeParent(ix, root)) root = p;
  const tree = flattenTree(ix, root);
  const terms = tree.leaves.map((l) => walkTerm(ix, l.tensor, l.reader));
  const describe = (t: Term) => {
    const c = ix.constant(t.input);
    if (t.kind === 'bare' && c) return `the constant ${t.input}${c.values === undefined ? '' : ', which is not a no-op there'}`;
    const what = t.kind === 'conv' ? ix.label(t.conv) : t.kind === 'bn' ? ix.label(t.bn) : t.kind === 'pool' ? ix.label(t.pool) : 'a tensor';
    return `${what} reads ${aliasRoot(ix, t.input).root}`;
  };
  return `${ix.label(root)} sums branches that do not all read one input (${terms.map(describe).join('; ')})`;
}
