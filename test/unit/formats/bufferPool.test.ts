import { describe, expect, it } from 'vitest';
import { BufferPool } from '../../../src/core/formats/bufferPool';

describe('BufferPool', () => {
  it('reuses a given-back buffer for a request it fits', () => {
    const pool = new BufferPool(16, 4);
    const a = pool.take(100);
    pool.give(a);
    const b = pool.take(80);
    expect(b.buffer).toBe(a.buffer);
    expect(b.length).toBe(80);
    // Taken once, it is no longer free.
    expect(pool.take(80).buffer).not.toBe(a.buffer);
  });

  it('picks the smallest free buffer that fits, and none more than 4× too large', () => {
    const pool = new BufferPool(16, 4);
    const [small, large, huge] = [pool.take(64), pool.take(256), pool.take(4096)];
    for (const b of [huge, small, large]) pool.give(b);
    expect(pool.take(200).buffer).toBe(large.buffer);
    expect(pool.take(600).buffer).not.toBe(huge.buffer);
    expect(pool.take(1100).buffer).toBe(huge.buffer);
  });

  it('leaves small requests and foreign buffers alone', () => {
    const pool = new BufferPool(1024, 4);
    const small = pool.take(10);
    pool.give(small);
    expect(pool.take(10).buffer).not.toBe(small.buffer);
    const foreign = new Uint8Array(2048);
    pool.give(foreign);
    expect(pool.take(2048).buffer).not.toBe(foreign.buffer);
  });

  it('ignores a second give of the same buffer', () => {
    const pool = new BufferPool(16, 4);
    const a = pool.take(100);
    pool.give(a);
    pool.give(new Float32Array(a.buffer));
    expect(pool.take(100).buffer).toBe(a.buffer);
    expect(pool.take(100).buffer).not.toBe(a.buffer);
  });

  it('keeps at most maxFree buffers, dropping the smallest', () => {
    const pool = new BufferPool(16, 2);
    const bufs = [pool.take(100), pool.take(200), pool.take(300)];
    for (const b of bufs) pool.give(b);
    expect(pool.take(250).buffer).toBe(bufs[2].buffer);
    expect(pool.take(150).buffer).toBe(bufs[1].buffer);
    expect(pool.take(100).buffer).not.toBe(bufs[0].buffer);
  });

  it('with poison, fills a given-back buffer so that any view still read gives NaN in every float type', () => {
    const pool = new BufferPool(16, 4, true);
    const taken = pool.take(64);
    const asFloat32 = new Float32Array(taken.buffer);
    asFloat32.fill(1.5);
    pool.give(taken);
    expect(Array.from(asFloat32).every(Number.isNaN)).toBe(true);
    expect(Number.isNaN(new Float64Array(taken.buffer)[0])).toBe(true);
    // 0xFFFF is a NaN in float16 (exponent all ones, mantissa not zero) and in bfloat16 alike.
    expect(new Uint16Array(taken.buffer)[0]).toBe(0xffff);
  });

  it('without poison, leaves a given-back buffer as it was (reuse costs no fill)', () => {
    const pool = new BufferPool(16, 4, false);
    const taken = pool.take(64).fill(7);
    pool.give(taken);
    expect(taken.every((b) => b === 7)).toBe(true);
  });
});
