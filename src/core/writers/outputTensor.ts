import { DTYPE_BYTES, numelOf, type DType } from '../formats/tensor';

/** A tensor to be written: its metadata is known up front, its bytes are produced when the writer reaches it. */
export interface OutputTensor {
  name: string;
  dtype: DType;
  shape: readonly number[];
  bytes(): Promise<Uint8Array>;
}

export function byteLengthOf(t: Pick<OutputTensor, 'name' | 'dtype' | 'shape'>): number {
  return numelOf(t.shape, t.name) * DTYPE_BYTES[t.dtype];
}

/** Produces a tensor's bytes and checks they have the size its header announced. */
export async function checkedBytes(t: OutputTensor): Promise<Uint8Array> {
  const data = await t.bytes();
  const want = byteLengthOf(t);
  if (data.length !== want) throw new Error(`${t.name}: produced ${data.length} bytes, expected ${want}`);
  return data;
}
