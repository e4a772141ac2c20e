import type { OnnxGraph } from '../formats/onnxModel';
import { FAMILIES, type FamilyLayout } from './families';
import type { GraphIndex, InitializerMeta } from './onnxGraph';

/*
 * Names only label what the shape found: a family's naming in initializer or node names, else
 * the scope of the summing node, else a number.
 */

export type FamilySource = 'initializer-names' | 'node-names';

/**
 * Module path from a torch exporter's node name: '/stage1/stage1.0/rbr_dense/conv/Conv' →
 * 'stage1.0.rbr_dense.conv'. Other naming schemes give ''.
 */
export function scopePath(nodeName: string | undefined): string {
  if (!nodeName?.startsWith('/')) return '';
  const parts = nodeName
    .split('/')
    .filter((p) => p !== '')
    .slice(0, -1);
  const segments: string[] = [];
  let previous = '';
  for (const part of parts) {
    // A child of a Sequential or ModuleList is scoped 'parent.index', repeating its parent's name.
    if (previous !== '' && part.startsWith(`${previous}.`)) segments[segments.length - 1] = part;
    else segments.push(part);
    previous = part;
  }
  return segments.join('.');
}

/** 'rbr_conv.{i}.conv' → a pattern whose group 1 is the block path in front of it. */
export function markerPattern(marker: string): RegExp {
  const escaped = marker.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace('\\{i\\}', '\\d+');
  return new RegExp(`^(?:(.*)\\.)?${escaped}$`);
}

/** The block path in front of `marker` in `path`, or undefined when `path` does not end in it. */
export function prefixOf(marker: string, path: string): string | undefined {
  const m = markerPattern(marker).exec(path);
  return m ? (m[1] ?? '') : undefined;
}

/** The block path shared by every branch path, if each sits where `family` puts that kind of branch. */
export function prefixIn(family: FamilyLayout, paths: readonly { path: string; conv: boolean }[]): string | undefined {
  let prefix: string | undefined;
  for (const { path, conv } of paths) {
    const markers = conv ? [family.dense.conv, family.oneByOne.conv] : [family.identity];
    const p = markers.map((m) => prefixOf(m, path)).find((x) => x !== undefined);
    if (p === undefined || (prefix !== undefined && p !== prefix)) return undefined;
    prefix = p;
  }
  return prefix;
}

/** A conv's or BN's module path as each source tells it ('' when that source says nothing). */
export function modulePath(ix: GraphIndex, i: number, source: FamilySource): string {
  const node = ix.node(i);
  if (source === 'node-names') return scopePath(node.name);
  const param = node.input[1] ?? '';
  return param.endsWith('.weight') ? param.slice(0, -'.weight'.length) : '';
}

export const FAMILY_SOURCES: readonly FamilySource[] = ['initializer-names', 'node-names'];

export interface Naming {
  families: FamilyLayout[];
  used: Set<string>;
  unnamed: number;
}

export function newNaming(graph: OnnxGraph, initializers: readonly InitializerMeta[]): Naming {
  const names = [...initializers.map((t) => t.name), ...graph.node.map((n) => scopePath(n.name))];
  return {
    // Families that share block names are told apart by names elsewhere in the model, as for checkpoints.
    families: FAMILIES.filter((f) => f.modelHint === undefined || names.some((n) => f.modelHint!.test(n))),
    used: new Set(),
    unnamed: 0,
  };
}

/** `name`, if no other block has it yet (it is then taken). */
export function claim(naming: Naming, name: string | undefined): string | undefined {
  if (name === undefined || naming.used.has(name)) return undefined;
  naming.used.add(name);
  return name;
}

/** A name no block has: 'blocks.0', 'blocks.1', ... */
export function numbered(naming: Naming): string {
  let name: string | undefined;
  while (name === undefined) name = claim(naming, `blocks.${naming.unnamed++}`);
  return name;
}
