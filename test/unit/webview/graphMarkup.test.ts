import { describe, expect, it } from 'vitest';
import { chunkGraph } from '../../../webview/reportModel/chunks';
import { collapseGraph, stageMembers } from '../../../webview/reportModel/collapse';
import { errorLevel } from '../../../webview/reportModel/errorScale';
import { arrowPath, boxesPath, edgePath, escapeXml, graphMarkup, overviewMarkup } from '../../../webview/reportModel/graphMarkup';
import { smallSample } from './sampleReport';

function markup(report = smallSample(), collapsed: string[] = []) {
  const graph = report.before;
  const levels = new Map(report.blocks.map((b) => [b.name, errorLevel(b.parity, report.rtol)]));
  const visible = collapseGraph(graph, new Set(collapsed));
  const chunks = chunkGraph(graph, visible, 40);
  const m = graphMarkup({ graph, visible, chunks, members: stageMembers(graph), levels });
  const all = (part: (c: number) => string) => chunks.nodes.map((_, c) => part(c));
  return { ...m, count: chunks.nodes.length, allEdges: all(m.chunkEdges), allNodes: all(m.chunkNodes) };
}

/** Everything a pane would draw with all chunks in view. */
const everything = (m: ReturnType<typeof markup>) => [m.skeleton, ...m.allEdges, ...m.allNodes].join('');

const count = (text: string, needle: RegExp) => text.match(needle)?.length ?? 0;

describe('graph pane markup', () => {
  it('escapes everything that could break out of text or attributes', () => {
    expect(escapeXml(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  });

  it('draws all edges as one path and one arrowhead per edge', () => {
    const edges = [
      {
        points: [
          { x: 0, y: 0 },
          { x: 0, y: 10 },
          { x: 5.04, y: 20 },
        ],
      },
      { points: [{ x: 1, y: 1 }] },
      {
        points: [
          { x: 3, y: 3 },
          { x: 3, y: 13 },
        ],
      },
    ];
    expect(edgePath(edges)).toBe('M0 0L0 10L5 20M3 3L3 13');
    expect(count(arrowPath(edges), /Z/g)).toBe(2);
    // Straight down: the tip is the end point, the base 7 units above it.
    expect(arrowPath([edges[2]])).toBe('M3 13L-0.5 6L6.5 6Z');
  });

  it('writes one node group per node, coloured by its block level, failing blocks marked', () => {
    const report = smallSample();
    const text = everything(markup(report));
    expect(count(text, /class="rl-node[ "]/g)).toBe(report.before.nodes.length);
    const blockNodes = report.before.nodes.filter((n) => n.block).length;
    expect(count(text, /rl-block-node/g)).toBe(blockNodes);
    const failNodes = report.before.nodes.filter((n) => n.block && report.blocks.find((b) => b.name === n.block)?.parity?.pass === false).length;
    expect(failNodes).toBeGreaterThan(0);
    expect(count(text, /rl-err-fail/g)).toBe(failNodes);
    expect(count(text, /class="rl-fail-mark"/g)).toBe(failNodes);
    expect(count(text, /data-stage=/g)).toBe(report.before.groups.length);
  });

  it('keeps chunks out of the skeleton, leaving an empty place for each in the edge and node layers', () => {
    const report = smallSample();
    const m = markup(report);
    const chunks = Math.ceil(report.before.nodes.length / 40);
    expect(count(m.skeleton, /<g data-chunk="\d+"><\/g>/g)).toBe(2 * chunks);
    expect(count(m.skeleton, /class="rl-node[ "]/g)).toBe(0);
    expect(m.count).toBe(chunks);
    expect(m.allEdges.every((e) => count(e, /class="rl-edges"/g) === 1)).toBe(true);
    expect(m.allNodes.map((c) => count(c, /class="rl-node[ "]/g))).toEqual([40, 40, 40, 40, report.before.nodes.length - 160]);
  });

  it('draws a collapsed stage as one box with the worst level of its blocks', () => {
    const report = smallSample();
    const text = everything(markup(report, ['stage3']));
    const stage3 = report.before.nodes.filter((n) => n.stage === 'stage3').length;
    expect(count(text, /class="rl-node[ "]/g)).toBe(report.before.nodes.length - stage3);
    expect(text).toContain('<g class="rl-box rl-err-fail" data-stage="stage3"');
    expect(text).toContain('14 blocks · ');
    expect(text).not.toContain('data-i="' + report.before.nodes.findIndex((n) => n.stage === 'stage3') + '"');
  });

  it('stays well-formed whatever the names and labels hold', () => {
    const report = smallSample();
    const node = report.before.nodes.find((n) => n.block === 'stage2.2')!;
    node.label = 'Conv "3×3" <b>&amp;';
    node.detail = '</title><g onload="x">';
    report.before.groups[0].stage = `s'"<g>`;
    const m = markup(report);
    const text = everything(m);
    expect(text).not.toContain('<b>');
    expect(text).not.toContain('<g onload');
    for (const part of [m.skeleton, ...m.allEdges, ...m.allNodes]) {
      const stack: string[] = [];
      for (const [, close, name, selfClosing] of part.matchAll(/<(\/?)([a-z]+)\b[^>]*?(\/?)>/g)) {
        if (selfClosing) continue;
        if (close) expect(stack.pop()).toBe(name);
        else stack.push(name);
      }
      expect(stack).toEqual([]);
    }
  });

  it('draws the zoomed-out overview as one path per colour, boxes only', () => {
    const report = smallSample();
    const graph = report.before;
    const levels = new Map(report.blocks.map((b) => [b.name, errorLevel(b.parity, report.rtol)]));
    const all = graph.nodes.map((_, i) => i);
    const text = overviewMarkup(graph, all, levels);
    expect(count(text, /<path /g)).toBe(new Set(graph.nodes.map((nd) => (nd.block ? levels.get(nd.block) : 'plain'))).size);
    expect(count(text, /Z/g)).toBe(graph.nodes.length);
    expect(text).not.toContain('<text');
    expect(text).toContain('class="rl-overview rl-err-fail"');
    expect(boxesPath(graph, [0])).toBe(`M${graph.nodes[0].x} ${graph.nodes[0].y}h${graph.nodes[0].width}v26h${-graph.nodes[0].width}Z`);
  });
});
