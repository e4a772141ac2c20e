import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { inWriteOrder, type OutputTensor } from '../../../src/core/writers/outputTensor';

/** Tensors of one float32 each, whose production and release are recorded. */
function recorded(count: number, failAt = -1) {
  const events: string[] = [];
  let running = 0;
  let mostAtOnce = 0;
  const tensors: OutputTensor[] = Array.from({ length: count }, (_, i) => ({
    name: `t${i}`,
    dtype: 'float32',
    shape: [1],
    bytes: async () => {
      events.push(`make ${i}`);
      mostAtOnce = Math.max(mostAtOnce, ++running);
      await new Promise((r) => setTimeout(r, 1));
      running--;
      if (i === failAt) throw new Error(`t${i} failed`);
      return new Uint8Array(new Float32Array([i]).buffer);
    },
    release: (bytes) => events.push(`release ${new Float32Array(bytes.buffer)[0]}`),
  }));
  return { tensors, events, mostAtOnce: () => mostAtOnce };
}

describe('inWriteOrder', () => {
  it('yields every tensor in order and releases each after the writer moves on', async () => {
    const { tensors, events } = recorded(5);
    const written: number[] = [];
    for await (const { tensor, bytes } of inWriteOrder(tensors)) {
      events.push(`write ${tensor.name}`);
      written.push(new Float32Array(bytes.buffer)[0]);
    }
    expect(written).toEqual([0, 1, 2, 3, 4]);
    for (let i = 0; i < 5; i++) expect(events.indexOf(`release ${i}`)).toBeGreaterThan(events.indexOf(`write t${i}`));
  });

  it('produces the next tensors while the current one is written, a bounded number ahead', async () => {
    const { tensors, events, mostAtOnce } = recorded(8);
    for await (const { tensor } of inWriteOrder(tensors)) {
      events.push(`write ${tensor.name}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    // Tensor 1 is being made before tensor 0 is written; never more than three are in flight.
    expect(events.indexOf('make 1')).toBeLessThan(events.indexOf('write t0'));
    expect(events.indexOf('make 4')).toBeGreaterThan(events.indexOf('write t1'));
    expect(mostAtOnce()).toBeLessThanOrEqual(3);
  });

  it('reports a failure when the writer reaches that tensor', async () => {
    const { tensors } = recorded(4, 2);
    const written: string[] = [];
    await expect(
      (async () => {
        for await (const { tensor } of inWriteOrder(tensors)) written.push(tensor.name);
      })(),
    ).rejects.toThrow('t2 failed');
    expect(written).toEqual(['t0', 't1']);
  });

  it('a failure ahead of a writer that stops first is not left unhandled', async () => {
    const { tensors } = recorded(4, 1);
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      await expect(
        (async () => {
          for await (const _ of inWriteOrder(tensors)) throw new Error('disk full');
        })(),
      ).rejects.toThrow('disk full');
      await new Promise((r) => setTimeout(r, 20));
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
    expect(unhandled).toEqual([]);
  });

  it('checks each tensor has the bytes its shape announces', async () => {
    const bad: OutputTensor = { name: 'short', dtype: 'float32', shape: [2], bytes: async () => new Uint8Array(4) };
    await expect(
      (async () => {
        for await (const _ of inWriteOrder([bad]));
      })(),
    ).rejects.toThrow('short: produced 4 bytes, expected 8');
  });
});

describe('inWriteOrder checksums', () => {
  it('takes each CRC-32 when the bytes arrive, so a later change to them cannot hide in it', async () => {
    const produced: Uint8Array[] = [];
    const tensors: OutputTensor[] = Array.from({ length: 4 }, (_, i) => ({
      name: `t${i}`,
      dtype: 'float32',
      shape: [1],
      bytes: async () => {
        const bytes = new Uint8Array(new Float32Array([i + 0.5]).buffer);
        produced.push(new Uint8Array(bytes));
        // Something scribbles on the buffer soon after handing it over, while earlier tensors are still being written.
        setTimeout(() => bytes.fill(0xff), 1);
        return bytes;
      },
    }));
    const crcs: number[] = [];
    for await (const { crc } of inWriteOrder(tensors)) {
      crcs.push(crc);
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(crcs).toEqual(produced.map((b) => crc32(b) >>> 0));
    expect(new Set(crcs).size).toBe(4);
  });
});

describe('inWriteOrder with tensors produced in pieces', () => {
  const pieces = (...parts: number[][]) =>
    async function* () {
      for (const p of parts) yield new Uint8Array(new Float32Array(p).buffer);
    };

  it('yields each piece in order, marks each tensor’s first and last, and carries the running CRC-32', async () => {
    const tensors: OutputTensor[] = [
      { name: 'a', dtype: 'float32', shape: [5], bytes: async () => pieces([1, 2], [3], [4, 5])() },
      { name: 'b', dtype: 'float32', shape: [1], bytes: async () => new Uint8Array(new Float32Array([6]).buffer) },
      { name: 'empty', dtype: 'float32', shape: [0], bytes: async () => pieces()() },
    ];
    const seen: string[] = [];
    let last = new Uint8Array(0);
    for await (const { tensor, bytes, crc, first, last: isLast } of inWriteOrder(tensors)) {
      seen.push(`${tensor.name}${first ? '<' : ''}${Array.from(new Float32Array(bytes.slice().buffer)).join(',')}${isLast ? '>' : ''}`);
      last = first ? new Uint8Array(bytes) : new Uint8Array([...last, ...bytes]);
      expect(crc).toBe(crc32(last) >>> 0);
    }
    expect(seen).toEqual(['a<1,2', 'a3', 'a4,5>', 'b<6>', 'empty<>']);
  });

  it('refuses a tensor whose pieces add up to more or less than its shape', async () => {
    const run = async (t: OutputTensor) => {
      for await (const _ of inWriteOrder([t]));
    };
    await expect(run({ name: 'long', dtype: 'float32', shape: [2], bytes: async () => pieces([1], [2], [3])() })).rejects.toThrow(
      'long: produced 12 bytes, expected 8',
    );
    await expect(run({ name: 'short', dtype: 'float32', shape: [3], bytes: async () => pieces([1], [2])() })).rejects.toThrow(
      'short: produced 8 bytes, expected 12',
    );
  });

  it('releases each piece only after the writer has moved on from it', async () => {
    const events: string[] = [];
    const tensors: OutputTensor[] = [
      {
        name: 'a',
        dtype: 'float32',
        shape: [3],
        bytes: async () => pieces([0], [1], [2])(),
        release: (bytes) => events.push(`release ${new Float32Array(bytes.buffer)[0]}`),
      },
    ];
    for await (const { bytes } of inWriteOrder(tensors)) events.push(`write ${new Float32Array(bytes.buffer)[0]}`);
    for (let i = 0; i < 3; i++) expect(events.indexOf(`release ${i}`)).toBeGreaterThan(events.indexOf(`write ${i}`));
  });
});
