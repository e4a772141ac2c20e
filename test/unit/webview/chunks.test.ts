import { describe, expect, it } from 'vitest';
import { chunkGraph, chunksInView, nodeAt } from '../../../webview/reportModel/chunks';
import { collapseGraph, collapsedBoxId } from '../../../webview/reportModel/collapse';
import { largeSample } from './sampleReport';

describe('chunks of a drawing', () => {
  const graph = largeSample().before;

  it('cover every visible node and edge exactly once, in bands top to bottom', () => {
    const visible = collapseGraph(graph, new Set());
    const chunks = chunkGraph(graph, visible, 150);
    expect(chunks.nodes.flat().sort((a, b) => a - b)).toEqual(visible.nodes);
    expect(chunks.nodes.every((c) => c.length <= 150)).toBe(true);
    expect([...chunks.edges.flat(), ...chunks.staticEdges].sort((a, b) => a - b)).toEqual(visible.edges.map((_, k) => k));
    for (let c = 1; c < chunks.nodes.length; c++) {
      const lastAbove = Math.max(...chunks.nodes[c - 1].map((i) => graph.nodes[i].y));
      expect(Math.min(...chunks.nodes[c].map((i) => graph.nodes[i].y))).toBeGreaterThanOrEqual(lastAbove);
    }
  });

  it('bound their nodes and the edges leaving them', () => {
    const visible = collapseGraph(graph, new Set());
    const chunks = chunkGraph(graph, visible, 150);
    chunks.edges.forEach((ks, c) => {
      const b = chunks.bounds[c];
      for (const k of ks) for (const p of visible.edges[k].points) expect(p.y >= b.y && p.y <= b.y + b.height && p.x >= b.x && p.x <= b.x + b.width).toBe(true);
    });
  });

  it('hang edges from a collapsed box on the chunk of their other end', () => {
    const visible = collapseGraph(graph, new Set(['stage2']));
    const chunks = chunkGraph(graph, visible, 150);
    const id = collapsedBoxId('stage2');
    const fromBox = visible.edges.findIndex((e) => e.from === id);
    const target = graph.nodes.findIndex((n) => n.id === visible.edges[fromBox].to);
    expect(chunks.edges.findIndex((ks) => ks.includes(fromBox))).toBe(chunks.nodes.findIndex((ns) => ns.includes(target)));
    expect(chunks.staticEdges).toEqual([]);
  });

  it('keep edges between two collapsed boxes always drawn', () => {
    const visible = collapseGraph(graph, new Set(['stage2', 'stage3']));
    const chunks = chunkGraph(graph, visible, 150);
    expect(chunks.staticEdges.map((k) => [visible.edges[k].from, visible.edges[k].to])).toEqual([[collapsedBoxId('stage2'), collapsedBoxId('stage3')]]);
  });

  it('displays only the chunks near the view', () => {
    const bounds = [0, 1, 2, 3, 4].map((i) => ({ x: 0, y: i * 1000, width: 300, height: 1000 }));
    expect(chunksInView(bounds, { x: 0, y: 2100, width: 300, height: 200 }, 0)).toEqual([false, false, true, false, false]);
    // Half a view of margin reaches into the next band when the view is near its edge.
    expect(chunksInView(bounds, { x: 0, y: 2850, width: 300, height: 200 }, 0.5)).toEqual([false, false, true, true, false]);
    expect(chunksInView(bounds, { x: 1000, y: 2100, width: 300, height: 200 }, 0.5)).toEqual([false, false, false, false, false]);
  });

  it('finds the node under a point, and nothing between nodes', () => {
    const visible = collapseGraph(graph, new Set());
    const chunks = chunkGraph(graph, visible, 150);
    const target = 3210;
    const n = graph.nodes[target];
    expect(nodeAt(graph, chunks, n.x + 1, n.y + n.height - 1)).toBe(target);
    expect(nodeAt(graph, chunks, n.x - 5, n.y - 13)).toBeUndefined();
    expect(nodeAt(graph, chunks, -100, -100)).toBeUndefined();
  });
});
