import type { DType } from '../formats/tensor';
import { contiguousStrides, OP, PickleBuilder, STORAGE_TYPES } from './pickleBuilder';

/**
 * Pickles a state dict the way torch.save lays it out, using only protocol-2 opcodes
 * and the three globals that torch's weights-only unpickler accepts. Storages are
 * referenced by persistent id and written as separate records.
 */

export interface PickledTensor {
  name: string;
  dtype: DType;
  shape: readonly number[];
  /** Storage record key ('0', '1', ...). */
  key: string;
}

export function pickleStateDict(tensors: readonly PickledTensor[]): Uint8Array {
  const p = new PickleBuilder();
  p.op(OP.PROTO).op(2);
  p.global('collections', 'OrderedDict').op(OP.EMPTY_TUPLE).op(OP.REDUCE);
  p.op(OP.MARK);
  for (const t of tensors) {
    const numel = t.shape.reduce((a, b) => a * b, 1);
    p.str(t.name).tensor({ type: STORAGE_TYPES[t.dtype], key: t.key, numel }, 0, t.shape, contiguousStrides(t.shape));
  }
  p.op(OP.SETITEMS);
  p.op(OP.STOP);
  return p.build();
}
