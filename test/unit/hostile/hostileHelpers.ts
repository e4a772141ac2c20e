import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setRootItem } from '../../../scripts/fuzz/pickleMutators';
import { pk, scanPickle } from '../../../scripts/fuzz/pickleOps';
import { parseZip, writeZip, zipContents, type ZipContent } from '../../../scripts/fuzz/zipCodec';
import { planDeploy } from '../../../src/core/convert/deployPlan';
import { MemoryByteSource } from '../../../src/core/formats/byteSource';
import type { ModelFile } from '../../../src/core/formats/modelFile';
import { readModel } from '../../../src/core/formats/openModelFile';
import { buildStructure } from '../../../src/core/model/buildStructure';
import { producedBytes } from '../writers/producedBytes';

export const FIXTURES = join(__dirname, '../../fixtures');
/** What every hostile payload would create if it ran. */
export const MARKER = '/tmp/replens-pwned-marker';

export function fixture(rel: string): Uint8Array {
  return new Uint8Array(readFileSync(join(FIXTURES, rel)));
}

export function readBytes(bytes: Uint8Array, name = 'test.pth'): Promise<ModelFile> {
  return readModel(new MemoryByteSource(name, bytes));
}

/** A torch zip archive holding `entries` (stored unless they say otherwise), with correct CRCs. */
export function torchZip(entries: ZipContent[]): Uint8Array {
  return writeZip(entries);
}

/** The torch zip `bytes` with its data.pkl replaced by `edit(data.pkl)`, CRCs recomputed. */
export function editDataPkl(bytes: Uint8Array, edit: (pkl: Uint8Array) => Uint8Array): Uint8Array {
  const entries = zipContents(bytes, parseZip(bytes)!).map((e) => (e.name.endsWith('/data.pkl') ? { ...e, data: edit(e.data) } : e));
  return torchZip(entries);
}

/** The pickle with root[key] = (value built by `valueOps`), set just before its STOP. */
export function withRootItem(pkl: Uint8Array, key: string, valueOps: Uint8Array): Uint8Array {
  return setRootItem(scanPickle(pkl).ops, pkl, key, valueOps);
}

/** A legacy (torch < 1.6) file: the header pickles of a real one, then `main`, then an empty storage list. */
export function legacyFile(main: Uint8Array): Uint8Array {
  const real = fixture('models/repvgg_tiny_train_legacy.pth');
  let end = 0;
  for (let i = 0; i < 3; i++) end = scanPickle(real, end).ops.at(-1)!.end;
  return pk(real.subarray(0, end), main, 0x80, 0x02, 0x5d, 0x2e);
}

export interface Converted {
  /** Output tensors by name, as float64. */
  values: Map<string, Float64Array>;
  fused: string[];
  warnings: string[];
}

/** What convertFile writes, without writing it: structure, deploy plan, every output tensor's values. */
export async function convertInMemory(model: ModelFile): Promise<Converted> {
  const structure = buildStructure(model);
  const plan = planDeploy(model, structure);
  const values = new Map<string, Float64Array>();
  for (const t of plan.tensors) {
    const bytes = await producedBytes(t);
    values.set(t.name, t.dtype === 'float32' ? Float64Array.from(new Float32Array(bytes.buffer)) : new Float64Array(0));
  }
  return {
    values,
    fused: plan.fused.map((b) => b.name),
    warnings: [...model.warnings, ...structure.warnings.map((w) => (w.block ? `${w.block}: ${w.message}` : w.message))],
  };
}
