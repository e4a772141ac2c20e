import { describe, expect, it } from 'vitest';
import type { GraphSpec } from '../../../src/core/report/graphSpec';
import { chainPieces, layoutGraph } from '../../../src/core/report/layout';

/**
 * A RepVGG-style train graph: per block an identity BN (from the second block on), 3×3 and 1×1
 * conv + BN, the adds and a ReLU, and the block output taken off the side as a graph output,
 * which RepLens' own graphs do for per-block parity.
 */
function repvggChain(blocks: number, sideOutputs = true): GraphSpec {
  const nodes: GraphSpec['nodes'] = [{ id: 'input', label: 'input', op: 'Input' }];
  const edges: GraphSpec['edges'] = [];
  const outputs: GraphSpec['nodes'] = [];
  let prev = 'input';
  for (let b = 0; b < blocks; b++) {
    const add = (id: string, label: string, from: string[]) => {
      nodes.push({ id: `${b}.${id}`, label, op: label, block: `stage1.${b}`, stage: 'stage1' });
      for (const f of from) edges.push({ from: f, to: `${b}.${id}` });
      return `${b}.${id}`;
    };
    const identity = b > 0 ? add('id', 'BatchNorm', [prev]) : undefined;
    const dense = add('bn3', 'BatchNorm', [add('conv3', 'Conv 3×3', [prev])]);
    const sum = identity ? add('add', 'Add', [identity, dense]) : dense;
    const one = add('bn1', 'BatchNorm', [add('conv1', 'Conv 1×1', [prev])]);
    prev = add('relu', 'Relu', [add('add1', 'Add', [sum, one])]);
    if (sideOutputs) {
      outputs.push({ id: `out:${b}`, label: `stage1.${b}`, op: 'Output' });
      edges.push({ from: prev, to: `out:${b}` });
    }
  }
  return { nodes: [...nodes, ...outputs], edges };
}

const indexOf = (spec: GraphSpec, id: string) => spec.nodes.findIndex((n) => n.id === id);

describe('chainPieces', () => {
  it('cuts a chain of blocks at the node between two blocks, each piece starting with its joint', () => {
    const spec = repvggChain(4, false);
    const targets = spec.nodes.map((n) => spec.edges.filter((e) => e.from === n.id).map((e) => indexOf(spec, e.to)));
    const pieces = chainPieces(
      spec.nodes.map((_, i) => i),
      targets,
    );
    const labels = pieces.map((p) => p.map((i) => spec.nodes[i].id));
    // The add before each ReLU is a cut too: only the edge to the ReLU crosses there.
    expect(labels[0]).toEqual(['input']);
    expect(labels.slice(1, 3)).toEqual([
      ['input', '0.conv3', '0.bn3', '0.conv1', '0.bn1', '0.add1'],
      ['0.add1', '0.relu'],
    ]);
    for (let k = 1; k < pieces.length; k++) expect(pieces[k][0]).toBe(pieces[k - 1].at(-1));
    expect(new Set(pieces.flat()).size).toBe(spec.nodes.length);
  });

  it('keeps a graph whose nodes are out of topological order in one piece', () => {
    const targets = [[2], [], [1]];
    expect(chainPieces([0, 1, 2], targets)).toEqual([[0, 1, 2]]);
  });
});

describe('layoutGraph', () => {
  const spec = repvggChain(200);
  const view = layoutGraph(spec);
  const node = (id: string) => view.nodes[indexOf(spec, id)];
  const centerX = (n: { x: number; width: number }) => n.x + n.width / 2;

  it('places every node once, inside the drawing, without overlaps', () => {
    expect(view.nodes).toHaveLength(spec.nodes.length);
    for (const n of view.nodes) {
      expect(n.x).toBeGreaterThanOrEqual(0);
      expect(n.y).toBeGreaterThanOrEqual(0);
      expect(n.x + n.width).toBeLessThanOrEqual(view.width);
      expect(n.y + n.height).toBeLessThanOrEqual(view.height);
    }
    const byTop = [...view.nodes].sort((a, b) => a.y - b.y);
    for (let i = 0; i < byTop.length; i++) {
      for (let j = i + 1; j < byTop.length && byTop[j].y < byTop[i].y + byTop[i].height; j++) {
        const [a, b] = [byTop[i], byTop[j]];
        expect(a.x + a.width <= b.x || b.x + b.width <= a.x, `${a.id} overlaps ${b.id}`).toBe(true);
      }
    }
  });

  it('keeps a long chain straight: every ReLU on one vertical, each block below the one before', () => {
    const relus = Array.from({ length: 200 }, (_, b) => node(`${b}.relu`));
    expect(new Set(relus.map((r) => Math.round(centerX(r) * 10) / 10)).size).toBe(1);
    for (let b = 1; b < relus.length; b++) expect(relus[b].y).toBeGreaterThan(relus[b - 1].y);
    expect(view.width).toBeLessThan(500);
  });

  it('draws each side output beside its producer, and every edge from its source to its target', () => {
    for (const b of [0, 100, 198]) {
      const relu = node(`${b}.relu`);
      const out = node(`out:${b}`);
      expect(out.y).toBe(relu.y);
      expect(out.x + out.width).toBeLessThan(relu.x);
    }
    // The last block's output ends the chain, so it goes below, as any graph output does.
    expect(node('out:199').y).toBeGreaterThan(node('199.relu').y);
    const near = (p: { x: number; y: number }, n: { x: number; y: number; width: number; height: number }) =>
      p.x >= n.x - 1 && p.x <= n.x + n.width + 1 && p.y >= n.y - 1 && p.y <= n.y + n.height + 1;
    for (const e of view.edges) {
      expect(e.points.length, `${e.from} → ${e.to}`).toBeGreaterThanOrEqual(2);
      expect(near(e.points[0], node(e.from)), `${e.from} → ${e.to} starts at its source`).toBe(true);
      expect(near(e.points.at(-1)!, node(e.to)), `${e.from} → ${e.to} ends at its target`).toBe(true);
    }
  });

  it('boxes each stage around its nodes', () => {
    const [group] = view.groups;
    expect(group.stage).toBe('stage1');
    const staged = view.nodes.filter((n) => n.stage === 'stage1');
    expect(group.y).toBeLessThan(Math.min(...staged.map((n) => n.y)));
    expect(group.y + group.height).toBeGreaterThan(Math.max(...staged.map((n) => n.y + n.height)));
  });
});
