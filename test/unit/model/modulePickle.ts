import { encodeFromFloat64 } from '../../../src/core/formats/encode';
import type { DType } from '../../../src/core/formats/tensor';
import { writeAtomically } from '../../../src/core/writers/atomicFile';
import { ZipWriter } from '../../../src/core/writers/zipWriter';

/*
 * torch.save(model) of a whole nn.Module, for tests: protocol 2, each module rebuilt by
 * copyreg._reconstructor(cls, object, None) and given its __dict__ by BUILD — `training`, its
 * attributes, `_parameters`, `_buffers` and `_modules` (OrderedDicts; a child set to None stays a
 * None entry) — and every tensor by torch._utils._rebuild_tensor_v2 over a storage record, as
 * torch lays a checkpoint out. Enough for RepLens' reader to see class names and module attributes.
 */

export interface PyTensor {
  dtype: DType;
  shape: readonly number[];
  values: Float64Array;
}

export type PyAttribute = number | boolean | string | null | readonly number[];

export interface PyModule {
  /** Dotted Python class, e.g. 'torch.nn.modules.conv.Conv2d'. */
  cls: string;
  attributes?: Record<string, PyAttribute>;
  params?: [string, PyTensor][];
  buffers?: [string, PyTensor][];
  children?: [string, PyModule | null][];
}

const STORAGE: Partial<Record<DType, string>> = { float64: 'DoubleStorage', float32: 'FloatStorage', float16: 'HalfStorage', int64: 'LongStorage' };

class Pickler {
  private readonly out: number[] = [];
  private readonly text = new TextEncoder();
  readonly storages: { key: string; bytes: Uint8Array }[] = [];

  private op(...codes: number[]): void {
    this.out.push(...codes);
  }

  private raw(bytes: Iterable<number>): void {
    for (const b of bytes) this.out.push(b);
  }

  private u32(n: number): void {
    this.raw([n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff]);
  }

  global(module: string, name: string): void {
    this.op(0x63);
    this.raw(this.text.encode(`${module}\n${name}\n`));
  }

  str(s: string): void {
    const b = this.text.encode(s);
    this.op(0x58);
    this.u32(b.length);
    this.raw(b);
  }

  int(n: number): void {
    if (n >= 0 && n < 256) this.op(0x4b, n);
    else {
      this.op(0x4a);
      this.u32(n >>> 0);
    }
  }

  float(x: number): void {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, x, false);
    this.op(0x47);
    this.raw(b);
  }

  value(v: PyAttribute): void {
    if (v === null) this.op(0x4e);
    else if (typeof v === 'boolean') this.op(v ? 0x88 : 0x89);
    else if (typeof v === 'string') this.str(v);
    else if (typeof v === 'number' && Number.isInteger(v)) this.int(v);
    else if (typeof v === 'number') this.float(v);
    else {
      this.op(0x28);
      for (const x of v) this.value(x);
      this.op(0x74);
    }
  }

  private orderedDict(entries: [string, () => void][]): void {
    this.global('collections', 'OrderedDict');
    this.op(0x29, 0x52);
    if (entries.length === 0) return;
    this.op(0x28);
    for (const [k, write] of entries) {
      this.str(k);
      write();
    }
    this.op(0x75);
  }

  tensor(t: PyTensor): void {
    const key = String(this.storages.length);
    const storage = STORAGE[t.dtype];
    if (!storage) throw new Error(`no storage type for ${t.dtype}`);
    const bytes = t.dtype === 'int64' ? new Uint8Array(BigInt64Array.from(t.values, (v) => BigInt(v)).buffer) : encodeFromFloat64(t.dtype, t.values);
    this.storages.push({ key, bytes });
    const strides: number[] = [];
    let s = 1;
    for (let i = t.shape.length - 1; i >= 0; i--) {
      strides[i] = s;
      s *= t.shape[i];
    }
    this.global('torch._utils', '_rebuild_tensor_v2');
    this.op(0x28);
    this.op(0x28);
    this.str('storage');
    this.global('torch', storage);
    this.str(key);
    this.str('cpu');
    this.int(t.values.length);
    this.op(0x74, 0x51);
    this.int(0);
    this.value(t.shape);
    this.value(strides);
    this.op(0x89);
    this.orderedDict([]);
    this.op(0x74, 0x52);
  }

  module(m: PyModule): void {
    const dot = m.cls.lastIndexOf('.');
    this.global('copyreg', '_reconstructor');
    this.op(0x28);
    this.global(m.cls.slice(0, dot), m.cls.slice(dot + 1));
    this.global('builtins', 'object');
    this.op(0x4e, 0x74, 0x52);
    this.op(0x7d, 0x28);
    this.str('training');
    this.op(0x89);
    for (const [k, v] of Object.entries(m.attributes ?? {})) {
      this.str(k);
      this.value(v);
    }
    this.str('_parameters');
    this.orderedDict((m.params ?? []).map(([n, t]) => [n, () => this.tensor(t)]));
    this.str('_buffers');
    this.orderedDict((m.buffers ?? []).map(([n, t]) => [n, () => this.tensor(t)]));
    this.str('_modules');
    this.orderedDict((m.children ?? []).map(([n, c]) => [n, () => (c === null ? this.op(0x4e) : this.module(c))]));
    this.op(0x75, 0x62);
  }

  finish(root: PyModule): Uint8Array {
    this.op(0x80, 2);
    this.module(root);
    this.op(0x2e);
    return Uint8Array.from(this.out);
  }
}

/** Writes `root` as torch.save(root) would (a zip checkpoint whose data.pkl is the module). */
export async function writeModuleCheckpoint(file: string, root: PyModule): Promise<string> {
  const p = new Pickler();
  const pickle = p.finish(root);
  await writeAtomically(
    file,
    async (sink) => {
      const zip = new ZipWriter(sink);
      await zip.add('archive/data.pkl', pickle);
      await zip.add('archive/byteorder', new TextEncoder().encode('little'));
      for (const s of p.storages) await zip.add(`archive/data/${s.key}`, s.bytes);
      await zip.add('archive/version', new TextEncoder().encode('3\n'));
      await zip.finish();
    },
    { overwrite: true },
  );
  return file;
}
