import { describe, expect, it } from 'vitest';
import { encodeFromFloat64, numberToBfloat16Bits, numberToFloat16Bits } from '../../../src/core/formats/encode';
import { bfloat16ToNumber, float16ToNumber, Tensor } from '../../../src/core/formats/tensor';
import { seededRandom } from '../fuse/reference';

describe('Tensor views', () => {
  it('reads float32 from a view into a larger buffer (as memory sources give)', async () => {
    const whole = new Uint8Array(64 + 8);
    new DataView(whole.buffer).setFloat32(64, 1.5, true);
    new DataView(whole.buffer).setFloat32(68, -2, true);
    const t = new Tensor('t', 'float32', [2], async () => whole.subarray(64, 72));
    expect([...(await t.toFloat32())]).toEqual([1.5, -2]);
    const odd = new Tensor('u', 'float32', [1], async () => whole.subarray(65, 69));
    expect((await odd.toFloat32()).length).toBe(1);
  });
});

describe('float16 and bfloat16 rounding', () => {
  it('every finite float16 survives decode → encode unchanged', () => {
    for (let h = 0; h < 0x10000; h++) {
      const v = float16ToNumber(h);
      if (Number.isNaN(v)) continue;
      expect(numberToFloat16Bits(v)).toBe(h);
    }
  });

  it('every finite bfloat16 survives decode → encode unchanged', () => {
    for (let b = 0; b < 0x10000; b++) {
      const v = bfloat16ToNumber(b);
      if (Number.isNaN(v)) continue;
      expect(numberToBfloat16Bits(v)).toBe(b);
    }
  });

  it('rounds half to even and once (no double rounding through float32)', () => {
    // 1 + 2^-11 is exactly halfway between float16 1 and 1 + 2^-10: ties go to the even mantissa, 1.
    expect(numberToFloat16Bits(1 + 2 ** -11)).toBe(0x3c00);
    expect(numberToFloat16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02);
    // Just above halfway must round up even though a float32 detour would land on the tie.
    expect(numberToBfloat16Bits(1 + 2 ** -8 + 2 ** -40)).toBe(0x3f81);
    expect(numberToBfloat16Bits(1 + 2 ** -8)).toBe(0x3f80);
    expect(numberToFloat16Bits(65520)).toBe(0x7c00); // overflow to infinity
    expect(numberToFloat16Bits(2 ** -25)).toBe(0x0000); // half of the smallest subnormal ties to zero
    expect(numberToFloat16Bits(-(2 ** -24))).toBe(0x8001);
  });

  it.each([
    ['float16', float16ToNumber, numberToFloat16Bits, 30],
    ['bfloat16', bfloat16ToNumber, numberToBfloat16Bits, 135],
  ] as const)('%s: random doubles and exact ties round like the nearest-value oracle', (_name, decode, encode, exponentSpan) => {
    // The oracle: the two neighbouring finite values of the format, the nearer one, ties to the even bit pattern.
    // Positive bit patterns order like their values.
    const positives = Array.from({ length: 0x8000 }, (_, h) => h).filter((h) => Number.isFinite(decode(h)));
    const values = positives.map(decode);
    const maxFinite = values.at(-1)!;
    const overflowAt = maxFinite + (maxFinite - values.at(-2)!) / 2;
    const oracle = (x: number): number => {
      const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
      const a = Math.abs(x);
      if (a >= overflowAt) return sign | encode(Infinity);
      let lo = 0;
      let hi = values.length - 1;
      while (hi - lo > 1) {
        const mid = (lo + hi) >> 1;
        if (values[mid] <= a) lo = mid;
        else hi = mid;
      }
      const [below, above] = values[hi] <= a ? [hi, hi] : [lo, hi];
      const dBelow = a - values[below];
      const dAbove = values[above] - a;
      const pick = dBelow < dAbove ? below : dAbove < dBelow ? above : positives[below] % 2 === 0 ? below : above;
      return sign | positives[pick];
    };
    const rand = seededRandom(11);
    const xs: number[] = [];
    for (let i = 0; i < 20_000; i++) xs.push((rand() < 0.5 ? -1 : 1) * (1 + rand()) * 2 ** Math.floor((rand() - 0.5) * 2 * exponentSpan));
    // Exact midpoints between neighbours (representable in a double), and the doubles either side of them.
    for (let i = 0; i + 1 < values.length; i += 97) {
      const mid = (values[i] + values[i + 1]) / 2;
      xs.push(mid, -mid, mid * (1 + 2 ** -52), mid * (1 - 2 ** -53));
    }
    for (const x of xs) expect(encode(x), `${x}`).toBe(oracle(x));
  });

  it('encodes float32 with round-to-nearest and keeps the element count', () => {
    const bytes = encodeFromFloat64('float32', Float64Array.of(0.1, -3));
    const f = new Float32Array(bytes.buffer);
    expect([...f]).toEqual([Math.fround(0.1), -3]);
  });
});
