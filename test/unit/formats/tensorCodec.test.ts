import { describe, expect, it } from 'vitest';
import { encodeFromFloat64, numberToBfloat16Bits, numberToFloat16Bits } from '../../../src/core/formats/encode';
import { bfloat16ToNumber, float16ToNumber, Tensor } from '../../../src/core/formats/tensor';

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

  it('encodes float32 with round-to-nearest and keeps the element count', () => {
    const bytes = encodeFromFloat64('float32', Float64Array.of(0.1, -3));
    const f = new Float32Array(bytes.buffer);
    expect([...f]).toEqual([Math.fround(0.1), -3]);
  });
});
