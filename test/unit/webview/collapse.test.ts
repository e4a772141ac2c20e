import { describe, expect, it } from 'vitest';
import type { GraphView } from '../../../src/shared/reportData';
import { collapseGraph, collapsedBoxId, cutAtEntry, cutAtExit, entryPoint, stageMembers } from '../../../webview/reportModel/collapse';
import { largeSample, smallSample } from './sampleReport';

const box = { x: 0, y: 100, width: 200, height: 100 };

describe('polyline clipping at a collapsed stage', () => {
  it('finds where a segment enters a rectangle', () => {
    expect(entryPoint({ x: 50, y: 0 }, { x: 50, y: 150 }, box)).toEqual({ x: 50, y: 100 });
    expect(entryPoint({ x: -100, y: 150 }, { x: 100, y: 150 }, box)).toEqual({ x: 0, y: 150 });
    expect(entryPoint({ x: 300, y: 0 }, { x: 100, y: 200 }, box)).toEqual({ x: 200, y: 100 });
  });

  it('cuts an incoming edge at the border and an outgoing one from it', () => {
    const incoming = [
      { x: 50, y: 10 },
      { x: 50, y: 60 },
      { x: 80, y: 150 },
    ];
    const cut = cutAtEntry(incoming, box);
    expect(cut.slice(0, 2)).toEqual(incoming.slice(0, 2));
    expect(cut[2].y).toBeCloseTo(100);
    expect(cut[2].x).toBeCloseTo(50 + 30 * (40 / 90));

    const outgoing = [
      { x: 100, y: 190 },
      { x: 100, y: 250 },
      { x: 120, y: 300 },
    ];
    expect(cutAtExit(outgoing, box)).toEqual([
      { x: 100, y: 200 },
      { x: 100, y: 250 },
      { x: 120, y: 300 },
    ]);
  });

  it('leaves edges that never touch the box alone and drops those inside it', () => {
    const outside = [
      { x: 300, y: 0 },
      { x: 300, y: 300 },
    ];
    expect(cutAtEntry(outside, box)).toEqual(outside);
    expect(
      cutAtEntry(
        [
          { x: 10, y: 120 },
          { x: 20, y: 130 },
        ],
        box,
      ),
    ).toEqual([]);
  });
});

function tiny(): GraphView {
  const node = (id: string, y: number, stage?: string, block?: string) => ({ id, label: id, op: 'Op', stage, block, x: 0, y, width: 60, height: 20 });
  const edge = (from: string, to: string, y0: number, y1: number) => ({
    from,
    to,
    points: [
      { x: 30, y: y0 },
      { x: 30, y: y1 },
    ],
  });
  return {
    nodes: [node('in', 0), node('a', 50, 's1', 'b1'), node('b', 100, 's1', 'b2'), node('c', 100, 's1', 'b2'), node('out', 200)],
    edges: [
      edge('in', 'a', 20, 50),
      edge('in', 'b', 20, 100),
      edge('a', 'b', 70, 100),
      edge('a', 'c', 70, 100),
      edge('b', 'out', 120, 200),
      edge('c', 'out', 120, 200),
    ],
    groups: [{ stage: 's1', x: -12, y: 24, width: 84, height: 108 }],
    width: 100,
    height: 230,
  };
}

describe('collapsing stage groups', () => {
  it('draws everything when nothing is collapsed', () => {
    const g = tiny();
    const v = collapseGraph(g, new Set());
    expect(v.nodes).toEqual([0, 1, 2, 3, 4]);
    expect(v.edges).toBe(g.edges);
    expect(v.groups).toEqual(g.groups);
    expect(v.boxes).toEqual([]);
  });

  it('replaces a stage by one box that the crossing edges attach to, once each', () => {
    const v = collapseGraph(tiny(), new Set(['s1']));
    expect(v.nodes).toEqual([0, 4]);
    expect(v.groups).toEqual([]);
    expect(v.boxes).toEqual([{ stage: 's1', id: collapsedBoxId('s1'), x: -12, y: 24, width: 84, height: 108, blocks: ['b1', 'b2'], nodes: 3 }]);
    const id = collapsedBoxId('s1');
    expect(v.edges.map((e) => [e.from, e.to])).toEqual([
      ['in', id],
      [id, 'out'],
    ]);
    expect(v.edges[0].points.at(-1)).toEqual({ x: 30, y: 24 });
    expect(v.edges[1].points[0]).toEqual({ x: 30, y: 132 });
  });

  it('ignores unknown stage names', () => {
    expect(collapseGraph(tiny(), new Set(['nope'])).boxes).toEqual([]);
  });

  it('counts blocks per stage', () => {
    const m = stageMembers(smallSample().before);
    expect([...m.keys()]).toEqual(['stage0', 'stage1', 'stage2', 'stage3', 'stage4']);
    expect(m.get('stage3')!.blocks).toHaveLength(14);
  });

  it('keeps a chain connected when a middle stage of a real-sized graph collapses', () => {
    const g = largeSample().before;
    const v = collapseGraph(g, new Set(['stage2']));
    const id = collapsedBoxId('stage2');
    expect(v.edges.filter((e) => e.to === id)).toHaveLength(1);
    // The next stage starts with a strided block: its 3×3 and 1×1 convs both read the box.
    expect(v.edges.filter((e) => e.from === id).map((e) => g.nodes.find((n) => n.id === e.to)!.label)).toEqual(['Conv 3×3', 'Conv 1×1']);
    const visibleIds = new Set([...v.nodes.map((i) => g.nodes[i].id), id]);
    expect(v.edges.every((e) => visibleIds.has(e.from) && visibleIds.has(e.to))).toBe(true);
    expect(v.nodes.length + v.boxes[0].nodes).toBe(g.nodes.length);
  });
});
