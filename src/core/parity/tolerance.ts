import type { OnnxGraph, OnnxTensor } from '../formats/onnxModel';
import type { DType } from '../formats/tensor';
import type { Metrics, Tolerance } from './compare';
import type { InitializerStore } from '../writers/externalData';
import { mulberry32 } from './prng';

/**
 * The tolerance a deploy file is judged with. A float32 file differs from its train form by float32
 * rounding only, so the defaults hold. A 16-bit file cannot: every fused weight is rounded to 11 (float16)
 * or 8 (bfloat16) significant bits, which moves a block's output by tens of those roundings on real
 * models. How much depends on the model, so it is measured on the model itself, independently of the
 * fusion: the train form with every block weight moved by up to one rounding of the deploy dtype
 * (the "rounding control") is run on the same inputs, and the deploy file may differ from the train
 * form by CONTROL_FACTOR times what the control does, never less than the defaults. A fusion that is
 * wrong moves outputs by far more than rounding does, so it still fails.
 */

/** Half the distance between 1 and the next number of each 16-bit float type. */
export const UNIT_ROUNDOFF: Readonly<Partial<Record<DType, number>>> = { float16: 2 ** -11, bfloat16: 2 ** -8 };

/** How many times the rounding control's error the deploy file may have (correct 16-bit conversions of the fixtures: 0.3 to 2.6 times). */
export const CONTROL_FACTOR = 4;

export interface ToleranceChoice extends Tolerance {
  /** Why these numbers: 'given', the float32 default, or what the rounding control measured. */
  basis: string;
  /** The deploy weights' 16-bit type, when the tolerance was measured for it. */
  dtype?: DType;
}

/**
 * The graph with each float32 initializer named in `tensors` multiplied, element by element, by
 * 1 + δ, δ uniform in ±u: at most what rounding a new value to the dtype does to it. The moved
 * initializers are read with `read` and go to `store`; the others are the graph's own.
 */
export async function roundingControl(
  graph: OnnxGraph,
  tensors: ReadonlySet<string>,
  u: number,
  seed: number,
  read: (t: OnnxTensor) => Promise<Uint8Array>,
  store: InitializerStore,
): Promise<OnnxGraph> {
  // Seeded: the same control on every machine.
  const bits = mulberry32(seed);
  const next = () => bits() / 4294967296;
  const initializer: OnnxTensor[] = [];
  for (const t of graph.initializer) {
    if (!tensors.has(t.name ?? '') || t.dataType !== 1) {
      initializer.push(t);
      continue;
    }
    const raw = await read(t);
    const values = new Float32Array(raw.byteLength / 4);
    new Uint8Array(values.buffer).set(raw);
    for (let i = 0; i < values.length; i++) values[i] *= 1 + u * (2 * next() - 1);
    const moved: OnnxTensor = { ...t, rawData: undefined, dataLocation: undefined, externalData: [] };
    await store.place(moved, new Uint8Array(values.buffer));
    initializer.push(moved);
  }
  return { ...graph, initializer };
}

/** The largest error of the control, in units of each output's scale (RMS, at least 1). */
export function controlError(metrics: readonly Metrics[]): number {
  return Math.max(0, ...metrics.map((m) => (Number.isFinite(m.maxAbs) ? m.maxAbs / m.scale : Infinity)));
}

export function measuredTolerance(base: Tolerance, dtype: DType, error: number): ToleranceChoice {
  const t = Math.max(CONTROL_FACTOR * error, base.atol, base.rtol);
  const u = UNIT_ROUNDOFF[dtype]!;
  return {
    atol: Math.max(base.atol, t),
    rtol: Math.max(base.rtol, t),
    dtype,
    basis:
      `the deploy weights are ${dtype}, which holds ${dtype === 'float16' ? 11 : 8} significant bits: the train form with every block weight ` +
      `moved by up to one ${dtype} rounding (±${u.toExponential(1)} relative, seeded) differs from itself by up to ${error.toExponential(1)} of an ` +
      `output's RMS, so the deploy file may differ by ${CONTROL_FACTOR}× that (at least the float32 defaults, atol ${base.atol}, rtol ${base.rtol})`,
  };
}

/** The given tolerance, or the float32 defaults; `dtype`, a 16-bit type of the deploy weights, is named so a FAIL can point at it. */
export function defaultTolerance(base: Tolerance, given: boolean, dtype?: DType): ToleranceChoice {
  const basis = given
    ? `as given${dtype ? ` (the deploy weights are ${dtype}: without --atol and --rtol RepLens measures what ${dtype} rounding costs this model)` : ''}`
    : 'the float32 defaults: a float32 deploy file differs from its train form by float32 rounding only';
  return { ...base, basis, ...(dtype ? { dtype } : {}) };
}
