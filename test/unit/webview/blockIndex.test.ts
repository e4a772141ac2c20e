import { describe, expect, it } from 'vitest';
import { blocksInVisualOrder, indexGraphBlocks, stepBlock } from '../../../webview/reportModel/blockIndex';
import { smallSample } from './sampleReport';

describe('block index of a graph', () => {
  const report = smallSample();

  it('maps every block to its nodes in both forms, the key the panes share', () => {
    const before = indexGraphBlocks(report.before);
    const after = indexGraphBlocks(report.after);
    expect([...before.nodes.keys()]).toEqual(report.blocks.map((b) => b.name));
    expect([...after.nodes.keys()]).toEqual(report.blocks.map((b) => b.name));
    // A block with an identity branch has 8 train-form operators and 2 deploy-form ones.
    expect(before.nodes.get('stage3.1')!.map((i) => report.before.nodes[i].op)).toEqual([
      'Conv',
      'Conv',
      'BatchNormalization',
      'BatchNormalization',
      'Add',
      'BatchNormalization',
      'Add',
      'Relu',
    ]);
    expect(after.nodes.get('stage3.1')!.map((i) => report.after.nodes[i].op)).toEqual(['Conv', 'Relu']);
  });

  it('bounds each block by its nodes', () => {
    const g = {
      nodes: [
        { id: 'a', label: 'a', op: 'Conv', block: 'b1', x: 10, y: 20, width: 60, height: 26 },
        { id: 'b', label: 'b', op: 'Relu', block: 'b1', x: 100, y: 80, width: 40, height: 26 },
        { id: 'c', label: 'c', op: 'Gemm', x: 0, y: 0, width: 500, height: 500 },
      ],
      edges: [],
      groups: [],
      width: 500,
      height: 500,
    };
    const index = indexGraphBlocks(g);
    expect(index.bounds.get('b1')).toEqual({ x: 10, y: 20, width: 130, height: 86 });
    expect(index.nodes.get('b1')).toEqual([0, 1]);
    expect(index.nodes.size).toBe(1);
  });

  it('walks blocks top to bottom and wraps around', () => {
    const order = blocksInVisualOrder(indexGraphBlocks(report.before));
    expect(order).toEqual(report.blocks.map((b) => b.name));
    expect(stepBlock(order, null, 1)).toBe(order[0]);
    expect(stepBlock(order, null, -1)).toBe(order.at(-1));
    expect(stepBlock(order, order[0], 1)).toBe(order[1]);
    expect(stepBlock(order, order.at(-1)!, 1)).toBe(order[0]);
    expect(stepBlock(order, order[0], -1)).toBe(order.at(-1));
    expect(stepBlock(order, 'missing', 1)).toBe(order[0]);
    expect(stepBlock([], null, 1)).toBeNull();
  });
});
