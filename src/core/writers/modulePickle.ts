import { isTuple, PyDict, PyFloat, PyGlobal, PyNative, PyObject, PySet, describeType, type PyValue } from '../formats/pickle';
import type { DType } from '../formats/tensor';
import { TorchDTypeValue, TorchStorage, TorchStorageType, TorchTensorRef } from '../formats/torchObjects';
import { contiguousStrides, OP, PickleBuilder, STORAGE_TYPES } from './pickleBuilder';

/**
 * Pickles an object graph as the reader left it (pickle.ts): the objects a whole-module checkpoint
 * holds, written back with the same classes, construction (NEWOBJ or a call) and state, so torch.load
 * rebuilds what it would have rebuilt from the input. Tensors are written as torch does; one the
 * writer produces anew is a `NewTensor`, stored in the record its writer gives it.
 */

/** A tensor written into its own record by the checkpoint writer (a state-dict entry of the output). */
export class NewTensor extends PyNative {
  constructor(
    readonly name: string,
    readonly dtype: DType,
    readonly shape: readonly number[],
    /** As an nn.Parameter, with this requires_grad; a buffer otherwise. */
    readonly parameter?: { requiresGrad: boolean },
  ) {
    super();
  }

  describe(): string {
    return `tensor ${this.dtype} [${this.shape.join(', ')}] '${this.name}'`;
  }
}

/** A value the reader kept only in part, which writing back would change. */
export class UnwritableValueError extends Error {}

export interface GraphStorages {
  /** The record key of a NewTensor. */
  newTensor(t: NewTensor): string;
  /** The record key for one of the input's storages (the writer copies its bytes). */
  inputStorage(s: TorchStorage): string;
}

export function pickleObjectGraph(root: PyValue, storages: GraphStorages): Uint8Array {
  const p = new PickleBuilder();
  const memo = new Map<object, number>();
  const remember = (v: object) => {
    memo.set(v, memo.size);
    p.put(memo.size - 1);
  };
  const items = (values: Iterable<PyValue>, closing: number) => {
    p.op(OP.MARK);
    for (const v of values) write(v);
    p.op(closing);
  };
  const pairs = (map: Map<PyValue, PyValue>) => {
    if (map.size === 0) return;
    p.op(OP.MARK);
    for (const [k, v] of map) {
      write(k);
      write(v);
    }
    p.op(OP.SETITEMS);
  };
  const tensor = (t: TorchTensorRef | NewTensor) => {
    const parameter = t.parameter;
    if (parameter) p.global('torch._utils', '_rebuild_parameter').op(OP.MARK);
    if (t instanceof NewTensor) {
      p.tensor({ type: STORAGE_TYPES[t.dtype], key: storages.newTensor(t), numel: t.shape.reduce((a, b) => a * b, 1) }, 0, t.shape, contiguousStrides(t.shape));
    } else {
      p.tensor({ type: t.storage.type.name, key: storages.inputStorage(t.storage), numel: t.storage.numel }, t.storageOffset, t.shape, t.stride);
    }
    if (parameter) {
      p.op(parameter.requiresGrad ? OP.NEWTRUE : OP.NEWFALSE);
      p.global('collections', 'OrderedDict').op(OP.EMPTY_TUPLE).op(OP.REDUCE);
      p.op(OP.TUPLE).op(OP.REDUCE);
    }
  };

  function write(v: PyValue): void {
    if (v === null) return void p.op(OP.NONE);
    if (typeof v === 'boolean') return void p.op(v ? OP.NEWTRUE : OP.NEWFALSE);
    if (typeof v === 'number') return void (Number.isSafeInteger(v) ? p.int(v) : p.float(v));
    if (typeof v === 'bigint') return void p.int(v);
    if (typeof v === 'string') return void p.str(v);
    if (v instanceof PyFloat) return void p.float(v.value);
    if (v instanceof PyGlobal) return void p.global(v.module, v.name);
    if (v instanceof TorchDTypeValue || v instanceof TorchStorageType) return void p.global('torch', v.name);
    const seen = memo.get(v);
    if (seen !== undefined) return void p.get(seen);
    if (v instanceof Uint8Array) {
      p.binary(v);
    } else if (isTuple(v)) {
      if (v.length === 0) p.op(OP.EMPTY_TUPLE);
      else items(v, OP.TUPLE);
    } else if (Array.isArray(v)) {
      p.op(OP.EMPTY_LIST);
      remember(v);
      if (v.length > 0) items(v, OP.APPENDS);
      return;
    } else if (v instanceof PyDict) {
      if (v.className === 'dict') p.op(OP.EMPTY_DICT);
      else if (v.className === 'collections.OrderedDict') p.global('collections', 'OrderedDict').op(OP.EMPTY_TUPLE).op(OP.REDUCE);
      else throw new UnwritableValueError(`a ${v.className}`);
      remember(v);
      pairs(v.items);
      if (v.attrs && v.attrs.size > 0) {
        const state = new PyDict();
        for (const [k, x] of v.attrs) state.items.set(k, x);
        write(state);
        p.op(OP.BUILD);
      }
      return;
    } else if (v instanceof PySet) {
      p.global('builtins', v.frozen ? 'frozenset' : 'set')
        .op(OP.MARK)
        .op(OP.EMPTY_LIST);
      if (v.items.size > 0) items(v.items, OP.APPENDS);
      p.op(OP.TUPLE).op(OP.REDUCE);
    } else if (v instanceof PyObject) {
      p.global(v.cls.module, v.cls.name);
      write(Object.freeze([...v.args]));
      if (v.made === 'new') {
        if (v.kwargs) write(v.kwargs);
        p.op(v.kwargs ? OP.NEWOBJ_EX : OP.NEWOBJ);
      } else {
        if (v.kwargs) throw new UnwritableValueError(`a ${v.className} called with keyword arguments`);
        p.op(OP.REDUCE);
      }
      remember(v);
      if (v.listItems) items(v.listItems, OP.APPENDS);
      if (v.dictItems) pairs(v.dictItems);
      if (v.state !== undefined) {
        write(v.state);
        p.op(OP.BUILD);
      }
      return;
    } else if (v instanceof TorchTensorRef || v instanceof NewTensor) {
      tensor(v);
    } else {
      throw new UnwritableValueError(describeType(v));
    }
    remember(v);
  }

  p.op(OP.PROTO).op(2);
  write(root);
  p.op(OP.STOP);
  return p.build();
}
