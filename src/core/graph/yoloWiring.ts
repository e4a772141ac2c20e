import type { ModuleInfo } from '../formats/modelFile';

/**
 * Where a layer of a YOLO model (YOLOv5/v6/v7's `models.yolo.Model`, whose `model` is an
 * nn.Sequential run by index) takes its input from, as its pickled module says: `i` is the layer's
 * index, `f` ("from") the layer(s) it reads — -1 the previous layer, a negative k the layer k back,
 * anything else an absolute index, or a list of those (Concat, Detect).
 */
export interface LayerWiring {
  index: number;
  from: number | readonly number[];
}

function integer(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v);
}

/** A module's `f`/`i` when both are there and well formed. */
export function layerWiring(attributes: Readonly<Record<string, unknown>>): LayerWiring | undefined {
  const { f, i } = attributes;
  if (!integer(i) || i < 0) return undefined;
  if (integer(f)) return { index: i, from: f };
  if (Array.isArray(f) && f.length > 0 && f.every(integer)) return { index: i, from: f as number[] };
  return undefined;
}

/**
 * The wiring of each named module (the blocks, by module path), or undefined unless every one of
 * them carries `f` and `i`: a state dict, or a pickled model of another kind, says nothing about it.
 */
export function wiringOf(names: readonly string[], modules: readonly ModuleInfo[] | undefined): Map<string, LayerWiring> | undefined {
  if (!modules || modules.length === 0 || names.length === 0) return undefined;
  const byPath = new Map(modules.map((m) => [m.path, m]));
  const wiring = new Map<string, LayerWiring>();
  for (const name of names) {
    const m = byPath.get(name);
    const w = m && layerWiring(m.attributes);
    if (!w) return undefined;
    wiring.set(name, w);
  }
  return wiring;
}

/** The absolute indices of the layers a layer reads, as YOLO's forward resolves `f` (y[f] over the outputs so far). */
export function sourcesOf(w: LayerWiring): number[] {
  const from = typeof w.from === 'number' ? [w.from] : w.from;
  return from.map((f) => (f < 0 ? w.index + f : f));
}

/** Whether `later` reads exactly the output of `earlier` and nothing else. */
export function readsOnly(later: LayerWiring, earlier: LayerWiring): boolean {
  const sources = sourcesOf(later);
  return sources.length === 1 && sources[0] === earlier.index;
}

/** `f` as the model's source writes it: -1, 75, [-1, 6]. */
export function fromText(w: LayerWiring): string {
  return typeof w.from === 'number' ? String(w.from) : `[${w.from.join(', ')}]`;
}

/** The layer(s) a layer reads, in words: 'layer 75', 'layers 6, 4'. */
export function sourcesText(w: LayerWiring): string {
  const s = sourcesOf(w);
  return `${s.length === 1 ? 'layer' : 'layers'} ${s.join(', ')}`;
}
