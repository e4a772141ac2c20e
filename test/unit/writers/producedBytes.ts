import { byteLengthOf, type OutputTensor } from '../../../src/core/writers/outputTensor';

/** All of an output tensor's bytes in one new buffer, its pieces released as a writer would. */
export async function producedBytes(t: OutputTensor): Promise<Uint8Array> {
  const made = await t.bytes();
  const out = new Uint8Array(byteLengthOf(t));
  let at = 0;
  for await (const piece of made instanceof Uint8Array ? [made] : made) {
    out.set(piece, at);
    at += piece.length;
    t.release?.(piece);
  }
  if (at !== out.length) throw new Error(`${t.name}: produced ${at} bytes, expected ${out.length}`);
  return out;
}
