import type { ByteReader } from './byteReader';
import { ModelFormatError } from './errors';
import { PyGlobal, PyNative, PyObject, isTuple, describeType, type GlobalResolver, type PyTuple, type PyValue } from './pickle';
import { DTYPE_BYTES, Tensor, float16ToNumber, numelOf, type DType } from './tensor';

/*
 * The torch (and numpy) names a checkpoint pickle refers to that RepLens
 * implements itself. Shared by the zip and legacy readers, which differ only
 * in where a storage's bytes live.
 */

interface StorageKind {
  /** Undefined for element types RepLens cannot decode (complex, quantized). */
  dtype?: DType;
  itemSize: number;
}

const STORAGE_KINDS: Readonly<Record<string, StorageKind>> = {
  FloatStorage: { dtype: 'float32', itemSize: 4 },
  DoubleStorage: { dtype: 'float64', itemSize: 8 },
  HalfStorage: { dtype: 'float16', itemSize: 2 },
  BFloat16Storage: { dtype: 'bfloat16', itemSize: 2 },
  LongStorage: { dtype: 'int64', itemSize: 8 },
  IntStorage: { dtype: 'int32', itemSize: 4 },
  ShortStorage: { dtype: 'int16', itemSize: 2 },
  CharStorage: { dtype: 'int8', itemSize: 1 },
  ByteStorage: { dtype: 'uint8', itemSize: 1 },
  BoolStorage: { dtype: 'bool', itemSize: 1 },
  UntypedStorage: { dtype: 'uint8', itemSize: 1 },
  ComplexFloatStorage: { itemSize: 8 },
  ComplexDoubleStorage: { itemSize: 16 },
  ComplexHalfStorage: { itemSize: 4 },
  QInt8Storage: { itemSize: 1 },
  QUInt8Storage: { itemSize: 1 },
  QInt32Storage: { itemSize: 4 },
  QUInt4x2Storage: { itemSize: 1 },
  QUInt2x4Storage: { itemSize: 1 },
};

/** Names of the torch.<name> dtype objects, which pickle by name. */
const TORCH_DTYPES = new Set([
  'float32',
  'float',
  'float64',
  'double',
  'float16',
  'half',
  'bfloat16',
  'int64',
  'long',
  'int32',
  'int',
  'int16',
  'short',
  'int8',
  'uint8',
  'bool',
  'complex32',
  'complex64',
  'complex128',
  'cfloat',
  'cdouble',
  'chalf',
]);

/** A storage class such as torch.FloatStorage, as named in a persistent id. */
export class TorchStorageType extends PyNative {
  constructor(
    readonly name: string,
    readonly dtype: DType | undefined,
    readonly itemSize: number,
  ) {
    super();
  }

  describe(): string {
    return `torch.${this.name}`;
  }
}

/** One storage: `numel` elements whose bytes the reader fetches on demand. */
export class TorchStorage extends PyNative {
  constructor(
    readonly key: string,
    readonly type: TorchStorageType,
    readonly numel: number,
    /** Element bytes are big-endian in the file and must be swapped. */
    readonly bigEndian: boolean,
    readonly readBytes: (byteOffset: number, byteLength: number) => Promise<Uint8Array>,
    /** The zip record holding the storage: a read of all of its bytes is checked against its CRC-32. */
    readonly record?: { byteLength: number; crc32: number },
    /** Its bytes from an offset on, in pieces, where the file can give them so (a stored zip record). */
    readonly openReader?: (byteOffset: number) => ByteReader | undefined,
  ) {
    super();
  }

  describe(): string {
    return `${this.type.describe()} '${this.key}' (${this.numel} elements)`;
  }
}

/** A view into a storage as _rebuild_tensor_v2 describes it; validated when built. */
export class TorchTensorRef extends PyNative {
  readonly numel: number;
  /** Set when the file wrapped it in an nn.Parameter, with the parameter's requires_grad. */
  parameter?: { requiresGrad: boolean };

  constructor(
    readonly file: string,
    readonly storage: TorchStorage,
    readonly storageOffset: number,
    readonly shape: readonly number[],
    readonly stride: readonly number[],
  ) {
    super();
    this.numel = numelOf(shape, file);
  }

  get dtype(): DType | undefined {
    return this.storage.type.dtype;
  }

  describe(): string {
    return `tensor ${this.dtype ?? this.storage.type.name} [${this.shape.join(', ')}]`;
  }

  /** A Tensor named `name`; undefined when the element type is not one RepLens decodes. */
  toTensor(name: string): Tensor | undefined {
    const dtype = this.dtype;
    if (dtype === undefined) return undefined;
    const { record, bigEndian } = this.storage;
    const readsWholeRecord =
      record !== undefined &&
      !bigEndian &&
      this.numel > 0 &&
      this.storageOffset === 0 &&
      this.isContiguous() &&
      this.numel * DTYPE_BYTES[dtype] === record.byteLength;
    const { openReader } = this.storage;
    const inPieces = openReader && !bigEndian && this.isContiguous() ? () => openReader(this.storageOffset * DTYPE_BYTES[dtype]) : undefined;
    return new Tensor(name, dtype, this.shape, () => this.load(dtype), readsWholeRecord ? record.crc32 : undefined, inPieces);
  }

  private isContiguous(): boolean {
    let expected = 1;
    for (let d = this.shape.length - 1; d >= 0; d--) {
      if (this.shape[d] !== 1 && this.stride[d] !== expected) return false;
      expected *= this.shape[d];
    }
    return true;
  }

  private async load(dtype: DType): Promise<Uint8Array> {
    const size = DTYPE_BYTES[dtype];
    if (this.numel === 0) return new Uint8Array(0);
    let out: Uint8Array;
    if (this.isContiguous()) {
      out = await this.storage.readBytes(this.storageOffset * size, this.numel * size);
    } else {
      // Read the spanned range once, then pick elements in row-major order.
      const span = lastElement(this.storageOffset, this.shape, this.stride) - this.storageOffset + 1;
      const src = await this.storage.readBytes(this.storageOffset * size, span * size);
      out = gather(src, this.shape, this.stride, size);
    }
    return this.storage.bigEndian && size > 1 ? byteSwapped(out, size) : out;
  }
}

/** A torch.float32-style dtype object. */
export class TorchDTypeValue extends PyNative {
  constructor(readonly name: string) {
    super();
  }

  describe(): string {
    return `torch.${this.name}`;
  }
}

function lastElement(offset: number, shape: readonly number[], stride: readonly number[]): number {
  let last = offset;
  for (let d = 0; d < shape.length; d++) last += (shape[d] - 1) * stride[d];
  return last;
}

function gather(src: Uint8Array, shape: readonly number[], stride: readonly number[], size: number): Uint8Array {
  const numel = shape.reduce((a, b) => a * b, 1);
  const out = new Uint8Array(numel * size);
  const rank = shape.length;
  const index = new Array<number>(rank).fill(0);
  const innerLen = rank > 0 ? shape[rank - 1] : 1;
  const innerStride = rank > 0 ? stride[rank - 1] : 0;
  let o = 0;
  for (let done = 0; done < numel; done += innerLen) {
    let base = 0;
    for (let d = 0; d < rank - 1; d++) base += index[d] * stride[d];
    if (innerStride === 1) {
      out.set(src.subarray(base * size, (base + innerLen) * size), o);
      o += innerLen * size;
    } else {
      for (let i = 0; i < innerLen; i++) {
        const s = (base + i * innerStride) * size;
        for (let j = 0; j < size; j++) out[o++] = src[s + j];
      }
    }
    // Odometer over all but the innermost dimension.
    for (let d = rank - 2; d >= 0; d--) {
      if (++index[d] < shape[d]) break;
      index[d] = 0;
    }
  }
  return out;
}

/** Each `size`-byte element of `bytes` in the other byte order. */
export function byteSwapped(bytes: Uint8Array, size: number): Uint8Array {
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i += size) {
    for (let j = 0; j < size; j++) out[i + j] = bytes[i + size - 1 - j];
  }
  return out;
}

function intTuple(v: PyValue, what: string, file: string): number[] {
  if (!Array.isArray(v)) throw new ModelFormatError(file, `${what} must be a tuple of integers, got ${describeType(v)}`);
  return (v as PyTuple).map((x) => {
    if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < 0) throw new ModelFormatError(file, `${what} contains ${String(x)}`);
    return x;
  });
}

/** _rebuild_tensor_v2(storage, storage_offset, size, stride, ...): checks the view fits inside its storage. */
function rebuildTensor(file: string, args: PyTuple): TorchTensorRef {
  const [storage, offset, size, stride] = args;
  if (!(storage instanceof TorchStorage)) throw new ModelFormatError(file, `tensor storage is ${describeType(storage)}, not a storage`);
  if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0)
    throw new ModelFormatError(file, `bad tensor storage offset ${String(offset)}`);
  const shape = intTuple(size ?? null, 'tensor size', file);
  const strides = intTuple(stride ?? null, 'tensor stride', file);
  if (shape.length !== strides.length) throw new ModelFormatError(file, `tensor size [${shape}] and stride [${strides}] differ in rank`);
  const ref = new TorchTensorRef(file, storage, offset, shape, strides);
  if (ref.numel > 0) {
    const last = lastElement(offset, shape, strides);
    if (last >= storage.numel) {
      throw new ModelFormatError(
        file,
        `tensor [${shape}] at offset ${offset} reaches element ${last} of storage '${storage.key}' with ${storage.numel} elements`,
      );
    }
  }
  return ref;
}

function parameter(file: string, args: PyTuple): TorchTensorRef {
  const data = args[0];
  if (!(data instanceof TorchTensorRef)) throw new ModelFormatError(file, `parameter data is ${describeType(data)}, not a tensor`);
  data.parameter = { requiresGrad: args[1] !== false };
  return data;
}

const NUMPY_SCALARS: Readonly<Record<string, (v: DataView, little: boolean) => PyValue>> = {
  f2: (v, le) => float16ToNumber(v.getUint16(0, le)),
  f4: (v, le) => v.getFloat32(0, le),
  f8: (v, le) => v.getFloat64(0, le),
  i1: (v) => v.getInt8(0),
  i2: (v, le) => v.getInt16(0, le),
  i4: (v, le) => v.getInt32(0, le),
  i8: (v, le) => safeInt(v.getBigInt64(0, le)),
  u1: (v) => v.getUint8(0),
  u2: (v, le) => v.getUint16(0, le),
  u4: (v, le) => v.getUint32(0, le),
  u8: (v, le) => safeInt(v.getBigUint64(0, le)),
  b1: (v) => v.getUint8(0) !== 0,
};

function safeInt(v: bigint): number | bigint {
  return Number.isSafeInteger(Number(v)) ? Number(v) : v;
}

/** numpy.core.multiarray.scalar(dtype, raw bytes): metrics such as best_acc are often numpy floats. */
function numpyScalar(module: string, name: string, args: PyTuple): PyValue {
  const [dtype, raw] = args;
  const placeholder = new PyObject(new PyGlobal(module, name), args);
  if (!(dtype instanceof PyObject) || !dtype.className.endsWith('.dtype') || !(raw instanceof Uint8Array)) return placeholder;
  const code = dtype.args[0];
  const decode = typeof code === 'string' ? NUMPY_SCALARS[code] : undefined;
  const width = typeof code === 'string' ? Number(code.slice(1)) : 0;
  if (!decode || raw.length !== width) return placeholder;
  // numpy.dtype's BUILD state is (version, byteorder, ...); '>' marks big-endian.
  const order = isTuple(dtype.state) ? dtype.state[1] : '<';
  return decode(new DataView(raw.buffer, raw.byteOffset, raw.length), order !== '>');
}

/**
 * Allow-list for torch checkpoints. `file` names the file in errors raised
 * while rebuilding tensors.
 */
export function torchGlobals(file: string): GlobalResolver {
  return (module, name) => {
    if ((module === 'torch' || module === 'torch.cuda' || module === 'torch.storage') && name.endsWith('Storage')) {
      const bare = name.replace(/^_/, '');
      const kind = STORAGE_KINDS[bare];
      return new TorchStorageType(bare, kind?.dtype, kind?.itemSize ?? 0);
    }
    if (module === 'torch' && TORCH_DTYPES.has(name)) return new TorchDTypeValue(name);
    switch (`${module}.${name}`) {
      case 'torch._utils._rebuild_tensor':
      case 'torch._utils._rebuild_tensor_v2':
        return new PyGlobal(module, name, (args) => rebuildTensor(file, args));
      case 'torch._utils._rebuild_parameter':
      case 'torch._utils._rebuild_parameter_with_state':
        return new PyGlobal(module, name, (args) => parameter(file, args));
      case 'torch._tensor._rebuild_from_type_v2':
        // Tensor subclasses: (func, type, args, state). The plain tensor is what RepLens needs.
        return new PyGlobal(module, name, (args) => {
          const [func, , inner] = args;
          if (!(func instanceof PyGlobal) || !func.call || !Array.isArray(inner)) return new PyObject(new PyGlobal(module, name), args);
          return func.call(inner, undefined);
        });
      case 'torch.jit._pickle.build_intlist':
      case 'torch.jit._pickle.build_doublelist':
      case 'torch.jit._pickle.build_boollist':
      case 'torch.jit._pickle.build_tensorlist':
      case 'torch.jit._pickle.restore_type_tag':
        // TorchScript wraps typed lists (and tags values) with these; the value is the first argument.
        return new PyGlobal(module, name, (args) => args[0] ?? null);
      case 'torch.Size':
        return new PyGlobal(module, name, (args) => Object.freeze(intTuple(args[0] ?? null, 'torch.Size', file)));
      case 'numpy.core.multiarray.scalar':
      case 'numpy._core.multiarray.scalar':
        return new PyGlobal(module, name, (args) => numpyScalar(module, name, args));
      default:
        return undefined;
    }
  };
}

/** Persistent-id tuple fields shared by both formats: ('storage', type, key, location, numel, ...). */
export function parseStoragePid(file: string, pid: PyValue): { type: TorchStorageType; key: string; numel: number; rest: PyTuple } {
  if (!Array.isArray(pid) || pid.length < 5 || pid[0] !== 'storage') {
    throw new ModelFormatError(file, `unexpected persistent id ${describeType(pid)}${Array.isArray(pid) ? ` starting with ${String(pid[0])}` : ''}`);
  }
  const [, type, key, , numel] = pid as PyTuple;
  if (!(type instanceof TorchStorageType)) throw new ModelFormatError(file, `storage type is ${describeType(type)}`);
  if (typeof key !== 'string') throw new ModelFormatError(file, `storage key is ${describeType(key)}`);
  if (typeof numel !== 'number' || !Number.isSafeInteger(numel) || numel < 0)
    throw new ModelFormatError(file, `storage '${key}' has bad size ${String(numel)}`);
  return { type, key, numel, rest: (pid as PyTuple).slice(5) };
}
