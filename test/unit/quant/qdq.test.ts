import { writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodeOnnxModel } from '../../../src/core/formats/onnxCodec';
import { runInChild } from '../../../src/core/parity/child';
import { activationParams, QdqGraph, quantizedActivations, quantizeWeights, roundHalfEven } from '../../../src/core/quant/qdq';
import { GraphBuilder, valueInfo } from '../model/onnxTestKit';
import { parityWorkerUnderTest } from '../parity/bundle';
import { seededRandom } from '../fuse/reference';

const env = parityWorkerUnderTest('replens-qdq-');

describe('the quantization arithmetic', () => {
  it('rounds half to even, as QuantizeLinear does', () => {
    expect([0.5, 1.5, 2.5, -0.5, -1.5, 2.4999, 2.5001].map(roundHalfEven)).toEqual([0, 2, 2, 0, -2, 2, 3]);
  });

  it('weights: symmetric int8 in [-127, 127], one scale per output channel or one for the tensor', () => {
    const w = Float32Array.of(1, -0.5, 0.25, 0, /* channel 1 */ 10, -10, 5, 2.5);
    const pc = quantizeWeights(w, 2, 'per-channel');
    expect(Array.from(pc.scale)).toEqual([Math.fround(1 / 127), Math.fround(10 / 127)]);
    expect(Array.from(pc.q)).toEqual([127, -64, 32, 0, 127, -127, 64, 32]);
    const pt = quantizeWeights(w, 2, 'per-tensor');
    expect(Array.from(pt.scale)).toEqual([Math.fround(10 / 127)]);
    // Channel 0 under the tensor's scale: 1 → 12.7 → 13, -0.5 → -6.35 → -6, 0.25 → 3.175 → 3.
    expect(Array.from(pt.q.subarray(0, 4))).toEqual([13, -6, 3, 0]);
    // A channel of zeros keeps scale 1.
    expect(Array.from(quantizeWeights(Float32Array.of(0, 0), 1, 'per-channel').scale)).toEqual([1]);
  });

  it('activations: uint8 over a range that always holds 0', () => {
    const positive = activationParams(0, 2.55);
    expect(positive.scale).toBeCloseTo(0.01, 15);
    expect(positive.zeroPoint).toBe(0);
    const signed = activationParams(-1, 1.55);
    expect(signed.scale).toBeCloseTo(0.01, 15);
    expect(signed.zeroPoint).toBe(100);
    expect(activationParams(0.5, 2.55).zeroPoint).toBe(0);
    expect(activationParams(0, 0)).toEqual({ scale: 1, zeroPoint: 0 });
  });
});

/** A conv written out plainly: NCHW, stride 1, pad k/2, float64. */
function conv(x: ArrayLike<number>, [c, h, w]: number[], weight: ArrayLike<number>, out: number, k: number): Float64Array {
  const y = new Float64Array(out * h * w);
  const p = Math.floor(k / 2);
  for (let o = 0; o < out; o++)
    for (let i = 0; i < h; i++)
      for (let j = 0; j < w; j++) {
        let s = 0;
        for (let ci = 0; ci < c; ci++)
          for (let a = 0; a < k; a++)
            for (let b = 0; b < k; b++) {
              const ii = i + a - p;
              const jj = j + b - p;
              if (ii >= 0 && ii < h && jj >= 0 && jj < w) s += x[(ci * h + ii) * w + jj] * weight[((o * c + ci) * k + a) * k + b];
            }
        y[(o * h + i) * w + j] = s;
      }
  return y;
}

describe('a QDQ copy run by ONNX Runtime', () => {
  it.each(['per-channel', 'per-tensor'] as const)(
    'computes the conv of the quantized input with the quantized weights (%s)',
    async (scheme) => {
      const g = new GraphBuilder(5);
      const y = g.conv('x', { out: 4, in: 3, k: 3, weight: 'w', name: 'conv' });
      const float = g.model(valueInfo('x', [1, 3, 6, 6]), y, [1, 4, 6, 6]);
      const rand = seededRandom(9);
      const x = Float32Array.from({ length: 3 * 36 }, () => 3 * rand() - 1);
      const range = { lo: Math.min(...x), hi: Math.max(...x) };
      const qdq = new QdqGraph(float);
      expect(quantizedActivations(float.graph!)).toEqual(['x']);
      const copy = qdq.copy(float.graph!.node, { suffix: 'int8', weights: scheme, activations: new Map([['x', range]]) });
      qdq.expose([copy.get(y)!]);
      const file = path.join(env.dir, `${scheme}.onnx`);
      await writeFile(file, await encodeOnnxModel(qdq.model));
      const reply = await runInChild(
        { type: 'infer', model: { label: scheme, source: { path: file } }, feeds: [{ name: 'x', dims: [1, 3, 6, 6], data: x }], optimization: 'disabled' },
        { subject: scheme, workerPath: env.workerPath },
      );
      const got = reply.outputs.find((o) => o.name === copy.get(y))!;

      // The same in float64, from the definitions: x → round(x / s) + zp, clamped to [0, 255], back as (q − zp)·s.
      const raw = float.graph!.initializer.find((t) => t.name === 'w')!.rawData as Uint8Array;
      const w = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
      const { scale, zeroPoint } = activationParams(range.lo, range.hi);
      const s32 = Math.fround(scale);
      const xq = Array.from(x, (v) => (Math.max(0, Math.min(255, roundHalfEven(v / s32) + zeroPoint)) - zeroPoint) * s32);
      const perChannel = scheme === 'per-channel';
      const wq = Array.from(w, (v, i) => {
        const c = perChannel ? Math.floor(i / 27) : 0;
        let max = 0;
        for (let j = perChannel ? c * 27 : 0; j < (perChannel ? (c + 1) * 27 : w.length); j++) max = Math.max(max, Math.abs(w[j]));
        const sw = Math.fround(max / 127);
        return Math.max(-127, Math.min(127, roundHalfEven(v / sw))) * sw;
      });
      const want = conv(xq, [3, 6, 6], wq, 4, 3);
      expect(got.dims).toEqual([1, 4, 6, 6]);
      for (let i = 0; i < want.length; i++) expect(Math.abs(got.data[i] - want[i])).toBeLessThan(1e-5);
      // And it is not the float conv: the quantization is really there.
      const plain = conv(x, [3, 6, 6], w, 4, 3);
      expect(Math.max(...Array.from(plain, (v, i) => Math.abs(v - got.data[i])))).toBeGreaterThan(1e-3);
    },
    60_000,
  );
});
