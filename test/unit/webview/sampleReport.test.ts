import { describe, expect, it } from 'vitest';
import type { GraphView } from '../../../src/shared/reportData';
import { largeSample, smallSample } from './sampleReport';

function consistent(g: GraphView): void {
  const ids = new Set(g.nodes.map((n) => n.id));
  expect(ids.size).toBe(g.nodes.length);
  expect(g.edges.every((e) => ids.has(e.from) && ids.has(e.to) && e.points.length >= 2)).toBe(true);
  for (const n of g.nodes) {
    expect(n.x + n.width).toBeLessThanOrEqual(g.width);
    expect(n.y + n.height).toBeLessThanOrEqual(g.height);
    if (!n.stage) continue;
    const group = g.groups.find((x) => x.stage === n.stage)!;
    expect(n.x).toBeGreaterThanOrEqual(group.x);
    expect(n.y + n.height).toBeLessThanOrEqual(group.y + group.height);
  }
}

describe('sample reports used for development', () => {
  it('are laid out consistently: edges join nodes, nodes sit inside their stage group', () => {
    const small = smallSample();
    consistent(small.before);
    consistent(small.after);
    expect(small.blocks).toHaveLength(22);
    expect(small.pass).toBe(false);
  });

  it('the large one has at least 5,000 train-form nodes', () => {
    const large = largeSample();
    expect(large.before.nodes.length).toBeGreaterThanOrEqual(5000);
    consistent(large.before);
  });
});
