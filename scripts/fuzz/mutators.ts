import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { numberToFloat16Bits } from '../../src/core/formats/encode';
import { mutatePickle, type Mutated } from './pickleMutators';
import { pk, scanPickle, unicode } from './pickleOps';
import { allFields, decodeMessage, encodeMessage, stringField, type PField, type PMessage } from './protoTree';
import { Rng } from './rng';
import { parseZip, writeZip, zipContents, type ZipContent, type ZipLayout } from './zipCodec';

/*
 * Fuzz cases: a seed fixture and one to three mutations, each aimed at the
 * structure of the format the bytes are in at that point (zip records, pickle
 * opcodes, safetensors header and data, protobuf fields), or plain byte edits.
 * Case `index` of run `seed` is always the same bytes.
 */

export interface Seed {
  name: string;
  /** Path the case is read under: external ONNX data resolves next to it. */
  path: string;
  bytes: Uint8Array;
}

export interface FuzzCase {
  seed: Seed;
  ops: string[];
  bytes: Uint8Array;
}

export interface Corpus {
  seeds: Seed[];
  /** Raw hostile pickles, transplanted into checkpoints as their data.pkl. */
  hostilePickles: Uint8Array[];
}

/** Every model fixture (the external-data blob is only read through its .onnx), and the hostile checkpoints. */
export function loadCorpus(fixtures: string): Corpus {
  const seeds: Seed[] = [];
  const add = (dir: string, keep: (f: string) => boolean) => {
    for (const f of readdirSync(join(fixtures, dir)).sort()) {
      if (!keep(f)) continue;
      const path = join(fixtures, dir, f);
      seeds.push({ name: `${dir}/${f}`, path, bytes: new Uint8Array(readFileSync(path)) });
    }
  };
  add('models', (f) => !f.endsWith('.data'));
  add('hostile', (f) => f.endsWith('.pth'));
  const hostileDir = join(fixtures, 'hostile');
  const hostilePickles = readdirSync(hostileDir)
    .filter((f) => f.endsWith('.pkl'))
    .sort()
    .map((f) => new Uint8Array(readFileSync(join(hostileDir, f))));
  return { seeds, hostilePickles };
}

type Format = 'zip' | 'legacy' | 'safetensors' | 'onnx' | 'other';

const LEGACY_MAGIC = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

function formatOf(b: Uint8Array): Format {
  if (b[0] === 0x50 && b[1] === 0x4b) return 'zip';
  if (LEGACY_MAGIC.every((x, i) => b[i] === x)) return 'legacy';
  if (b.length >= 9 && b[8] === 0x7b) return 'safetensors';
  if (b.length >= 2 && (b[0] === 0x08 || b[0] >> 3 === 7)) return 'onnx';
  return 'other';
}

function splice(data: Uint8Array, start: number, end: number, insert: Uint8Array = new Uint8Array(0)): Uint8Array {
  const out = new Uint8Array(data.length - (end - start) + insert.length);
  out.set(data.subarray(0, start), 0);
  out.set(insert, start);
  out.set(data.subarray(end), start + insert.length);
  return out;
}

function writeUint(out: Uint8Array, pos: number, size: number, value: bigint): void {
  for (let i = 0; i < size && pos + i < out.length; i++) out[pos + i] = Number((BigInt.asUintN(64, value) >> BigInt(8 * i)) & 0xffn);
}

function readUint(b: Uint8Array, pos: number, size: number): bigint {
  let v = 0n;
  for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[pos + i] ?? 0);
  return v;
}

/** Values that break size and offset checks: edges of each width, off-by-ones, the file size. */
function interesting(rng: Rng, size: number, orig: bigint, fileSize: number): bigint {
  const max = (1n << BigInt(8 * size)) - 1n;
  const v = rng.pick([
    0n,
    1n,
    orig + 1n,
    orig - 1n,
    orig * 2n,
    orig + 4096n,
    BigInt(fileSize),
    BigInt(fileSize) + 1n,
    max,
    max - 1n,
    max >> 1n,
    (max >> 1n) + 1n,
    0xffffffffn,
    0x80000000n,
    2n ** 53n - 1n,
    2n ** 53n,
    2n ** 63n,
  ]);
  return BigInt.asUintN(8 * size, v);
}

function truncateNear(bytes: Uint8Array, boundaries: number[], rng: Rng, what: string): Mutated {
  const b = rng.pick(boundaries);
  const at = Math.max(0, Math.min(bytes.length - 1, b + rng.pick([0, 0, 0, -1, 1, -2, 2, rng.int(-40, 40)])));
  return { bytes: bytes.subarray(0, at), label: `${what}.truncate:@${at}` };
}

/** A special value written over one element of a tensor's bytes, as a float of `itemSize` bytes (1: 0xff). */
function injectValue(data: Uint8Array, rng: Rng, itemSize: number): { bytes: Uint8Array; label: string } {
  const out = data.slice();
  const n = Math.floor(out.length / itemSize);
  if (n === 0) return { bytes: out, label: 'value:empty' };
  const i = rng.below(n);
  const dv = new DataView(out.buffer);
  const v = rng.pick([NaN, Infinity, -Infinity, -1, 0, -1e-7, 3.4e38, -5e-324, 1e-45]);
  if (itemSize === 4) dv.setFloat32(i * 4, v, true);
  else if (itemSize === 2) dv.setUint16(i * 2, numberToFloat16Bits(v), true);
  else if (itemSize === 8) dv.setFloat64(i * 8, v, true);
  else out[i] = 0xff;
  return { bytes: out, label: `value[${i}]=${v}` };
}

// ---------------------------------------------------------------------------------------------
// Torch zip

const CENTRAL_FIELDS: [string, number, number][] = [
  ['flags', 8, 2],
  ['method', 10, 2],
  ['crc', 16, 4],
  ['compressed', 20, 4],
  ['size', 24, 4],
  ['nameLen', 28, 2],
  ['extraLen', 30, 2],
  ['commentLen', 32, 2],
  ['disk', 34, 2],
  ['local', 42, 4],
];
const LOCAL_FIELDS: [string, number, number][] = [
  ['signature', 0, 4],
  ['flags', 6, 2],
  ['method', 8, 2],
  ['nameLen', 26, 2],
  ['extraLen', 28, 2],
];

function zipBoundaries(z: ZipLayout): number[] {
  const b = [z.cdOffset, z.cdEnd, z.eocd, z.eocd + 21];
  if (z.zip64Record !== undefined) b.push(z.zip64Record);
  if (z.zip64Locator !== undefined) b.push(z.zip64Locator);
  for (const e of z.entries) b.push(e.local, e.dataStart, e.dataEnd, e.central);
  return b;
}

function mutateZipContent(entries: ZipContent[], rng: Rng, corpus: Corpus): string {
  const pkl = entries.find((e) => e.name.endsWith('data.pkl'));
  const storages = entries.filter((e) => /\/data\/[^/]+$/.test(e.name));
  const variant = rng.weighted<string>([
    ['pickle', 10],
    ['value', 3],
    ['drop', 1],
    ['rename', 1],
    ['duplicate', 1],
    ['byteorder', 1],
    ['deflate', 1],
    ['resize', 1],
    ['transplant', 1],
  ]);
  switch (variant) {
    case 'pickle': {
      if (!pkl) break;
      const m = mutatePickle(pkl.data, rng);
      pkl.data = m.bytes;
      return m.label;
    }
    case 'value': {
      if (storages.length === 0) break;
      const s = rng.pick(storages);
      const m = injectValue(s.data, rng, rng.pick([4, 4, 2, 8]));
      s.data = m.bytes;
      return `storage.value:${s.name}:${m.label}`;
    }
    case 'drop': {
      const i = rng.below(entries.length);
      return `entry.drop:${entries.splice(i, 1)[0].name}`;
    }
    case 'rename': {
      const e = rng.pick(entries);
      const to = rng.pick([`${e.name}x`, e.name.replace(/^[^/]*\//, 'other/'), e.name.replace(/\d+$/, '999'), 'data.pkl', '', '../data.pkl']);
      const from = e.name;
      e.name = to;
      return `entry.rename:${from}->${to}`;
    }
    case 'duplicate': {
      const e = rng.pick(entries);
      entries.splice(rng.below(entries.length + 1), 0, { ...e, name: rng.chance(0.5) ? e.name : e.name.replace(/^[^/]*\//, 'copy/') });
      return `entry.duplicate:${e.name}`;
    }
    case 'byteorder': {
      const prefix = pkl ? pkl.name.slice(0, -'data.pkl'.length) : '';
      const text = rng.pick(['big', 'little\n', 'middle', 'x'.repeat(17), '']);
      const existing = entries.find((e) => e.name === `${prefix}byteorder`);
      if (existing) existing.data = new TextEncoder().encode(text);
      else entries.push({ name: `${prefix}byteorder`, data: new TextEncoder().encode(text), method: 0 });
      return `entry.byteorder:${JSON.stringify(text)}`;
    }
    case 'deflate': {
      for (const e of entries) if (rng.chance(0.5)) e.method = 8;
      return 'entry.deflate:some';
    }
    case 'resize': {
      if (storages.length === 0) break;
      const s = rng.pick(storages);
      const delta = rng.pick([-1, -4, 1, 4, -s.data.length]);
      s.data = delta < 0 ? s.data.subarray(0, Math.max(0, s.data.length + delta)) : pk(s.data, new Uint8Array(delta));
      return `storage.resize:${s.name}${delta}`;
    }
    case 'transplant': {
      if (!pkl || corpus.hostilePickles.length === 0) break;
      pkl.data = rng.pick(corpus.hostilePickles);
      return 'pickle.transplant:hostile';
    }
  }
  return 'unchanged';
}

function mutateZip(bytes: Uint8Array, rng: Rng, corpus: Corpus): Mutated | undefined {
  const z = parseZip(bytes);
  if (!z || z.entries.length === 0) return undefined;
  const variant = rng.weighted<string>([
    ['content', 8],
    ['truncate', 2],
    ['central', 3],
    ['local', 1],
    ['end', 2],
    ['pointer', 1],
  ]);
  const out = bytes.slice();
  switch (variant) {
    case 'content': {
      let entries: ZipContent[];
      try {
        entries = zipContents(bytes, z).map((e) => ({ ...e }));
      } catch {
        return undefined;
      }
      const label = mutateZipContent(entries, rng, corpus);
      return { bytes: writeZip(entries), label: `zip.content:${label}` };
    }
    case 'truncate':
      return truncateNear(bytes, zipBoundaries(z), rng, 'zip');
    case 'central': {
      const e = rng.pick(z.entries);
      const [name, off, size] = rng.pick(CENTRAL_FIELDS);
      const v = interesting(rng, size, readUint(out, e.central + off, size), bytes.length);
      writeUint(out, e.central + off, size, v);
      return { bytes: out, label: `zip.central:${e.name}.${name}=${v}` };
    }
    case 'local': {
      const e = rng.pick(z.entries);
      const [name, off, size] = rng.pick(LOCAL_FIELDS);
      const v = interesting(rng, size, readUint(out, e.local + off, size), bytes.length);
      writeUint(out, e.local + off, size, v);
      return { bytes: out, label: `zip.local:${e.name}.${name}=${v}` };
    }
    case 'end': {
      const fields: [string, number, number][] = [
        ['eocd.disk', z.eocd + 4, 2],
        ['eocd.cdDisk', z.eocd + 6, 2],
        ['eocd.diskEntries', z.eocd + 8, 2],
        ['eocd.entries', z.eocd + 10, 2],
        ['eocd.cdSize', z.eocd + 12, 4],
        ['eocd.cdOffset', z.eocd + 16, 4],
        ['eocd.commentLen', z.eocd + 20, 2],
      ];
      if (z.zip64Record !== undefined && z.zip64Locator !== undefined) {
        const r = z.zip64Record;
        fields.push(
          ['zip64.disk', r + 16, 4],
          ['zip64.entries', r + 32, 8],
          ['zip64.cdSize', r + 40, 8],
          ['zip64.cdOffset', r + 48, 8],
          ['zip64.signature', r, 4],
          ['locator.recordOffset', z.zip64Locator + 8, 8],
        );
      }
      const [name, pos, size] = rng.pick(fields);
      const v = interesting(rng, size, readUint(out, pos, size), bytes.length);
      writeUint(out, pos, size, v);
      return { bytes: out, label: `zip.end:${name}=${v}` };
    }
    default: {
      // An entry's local header offset pointing at another record.
      const e = rng.pick(z.entries);
      const target = rng.pick([...z.entries.map((x) => x.local), z.cdOffset, z.eocd, e.dataStart]);
      writeUint(out, e.central + 42, 4, BigInt(target));
      return { bytes: out, label: `zip.pointer:${e.name}.local->${target}` };
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Legacy torch

const STORAGE_SIZES: Record<string, number> = {
  FloatStorage: 4,
  DoubleStorage: 8,
  HalfStorage: 2,
  BFloat16Storage: 2,
  LongStorage: 8,
  IntStorage: 4,
  ShortStorage: 2,
  CharStorage: 1,
  ByteStorage: 1,
  BoolStorage: 1,
};

interface LegacyLayout {
  /** [start, end) of the magic, version, sys_info, main and key-list pickles. */
  pickles: [number, number][];
  /** Each storage: where its 8-byte element count and its data start. */
  storages: { key: string; countAt: number; data: number; itemSize: number }[];
}

/** Storage element sizes by key, read from the ('storage', type, key, ...) persistent ids of the main pickle. */
function legacyStorageSizes(data: Uint8Array, start: number, end: number): Map<string, number> {
  const { ops } = scanPickle(data.subarray(0, end), start);
  // Where each pushed string or global sits; decoded only when needed (mutated pickles have a million of them).
  type Ref = { start: number; end: number; global: boolean } | undefined;
  const memo = new Map<number, Ref>();
  const refs: Ref[] = [];
  for (const o of ops) {
    if (o.op === 0x71) {
      memo.set(data[o.pos + 1], refs[refs.length - 1]);
      continue;
    }
    if (o.op === 0x58) refs.push({ start: o.pos + 5, end: o.end, global: false });
    else if (o.op === 0x8c) refs.push({ start: o.pos + 2, end: o.end, global: false });
    else if (o.op === 0x63) refs.push({ start: o.pos + 1, end: o.end - 1, global: true });
    else if (o.op === 0x68) refs.push(memo.get(data[o.pos + 1]));
    else refs.push(undefined);
  }
  const dec = new TextDecoder();
  const text = (r: Ref) => {
    if (!r) return undefined;
    const s = dec.decode(data.subarray(r.start, r.end));
    return r.global ? s.replace('\n', '.') : s;
  };
  const sizes = new Map<string, number>();
  for (let i = 0; i + 2 < refs.length; i++) {
    const r = refs[i];
    if (!r || r.end - r.start !== 7 || text(r) !== 'storage') continue;
    const type = text(refs[i + 1])?.replace(/^torch\./, '');
    const key = text(refs[i + 2]);
    if (type && key !== undefined && STORAGE_SIZES[type] && !sizes.has(key)) sizes.set(key, STORAGE_SIZES[type]);
  }
  return sizes;
}

function parseLegacy(b: Uint8Array): LegacyLayout | undefined {
  const pickles: [number, number][] = [];
  let pos = 0;
  for (let i = 0; i < 5; i++) {
    const { ops, complete } = scanPickle(b, pos, false);
    if (!complete) return undefined;
    pickles.push([pos, ops[ops.length - 1].end]);
    pos = ops[ops.length - 1].end;
  }
  // A main pickle made huge by an earlier mutation: leave it to byte-level edits.
  if (pickles[3][1] - pickles[3][0] > 1 << 20) return undefined;
  const sizes = legacyStorageSizes(b, pickles[3][0], pickles[3][1]);
  const keyOps = scanPickle(b.subarray(0, pickles[4][1]), pickles[4][0]).ops.filter((o) => o.op === 0x58);
  const storages: LegacyLayout['storages'] = [];
  for (const o of keyOps) {
    const key = new TextDecoder().decode(b.subarray(o.pos + 5, o.end));
    const itemSize = sizes.get(key);
    if (itemSize === undefined || pos + 8 > b.length) return undefined;
    const count = Number(readUint(b, pos, 8));
    storages.push({ key, countAt: pos, data: pos + 8, itemSize });
    pos += 8 + count * itemSize;
  }
  return { pickles, storages };
}

function mutateLegacy(bytes: Uint8Array, rng: Rng): Mutated | undefined {
  const l = parseLegacy(bytes);
  if (!l) return undefined;
  const variant = rng.weighted<string>([
    ['pickle', 6],
    ['truncate', 2],
    ['count', 2],
    ['value', 2],
    ['keys', 1],
  ]);
  switch (variant) {
    case 'pickle': {
      const which = rng.weighted<number>([
        [3, 8],
        [2, 1],
        [4, 1],
        [1, 1],
      ]);
      const [s, e] = l.pickles[which];
      const m = mutatePickle(bytes.subarray(s, e), rng);
      return { bytes: splice(bytes, s, e, m.bytes), label: `legacy.pickle:#${which}:${m.label}` };
    }
    case 'truncate':
      return truncateNear(bytes, [...l.pickles.flat(), ...l.storages.flatMap((s) => [s.countAt, s.data])], rng, 'legacy');
    case 'count': {
      if (l.storages.length === 0) return undefined;
      const s = rng.pick(l.storages);
      const out = bytes.slice();
      const v = interesting(rng, 8, readUint(out, s.countAt, 8), bytes.length);
      writeUint(out, s.countAt, 8, v);
      return { bytes: out, label: `legacy.count:${s.key}=${v}` };
    }
    case 'value': {
      if (l.storages.length === 0) return undefined;
      const s = rng.pick(l.storages);
      const end = Math.min(bytes.length, s.data + Number(readUint(bytes, s.countAt, 8)) * s.itemSize);
      const m = injectValue(bytes.subarray(s.data, end), rng, s.itemSize);
      return { bytes: splice(bytes, s.data, end, m.bytes), label: `legacy.value:${s.key}:${m.label}` };
    }
    default: {
      // A different storage key list: one dropped, duplicated or unknown.
      const keys = l.storages.map((s) => s.key);
      const edit = keys.length === 0 ? 2 : rng.below(3);
      if (edit === 0) keys.splice(rng.below(keys.length), 1);
      else if (edit === 1) keys.push(rng.pick(keys));
      else keys.push('no-such-storage');
      const list = pk(0x80, 0x02, 0x28, ...keys.map(unicode), 0x6c, 0x2e);
      const [s, e] = l.pickles[4];
      return { bytes: splice(bytes, s, e, list), label: `legacy.keys:${['drop', 'duplicate', 'unknown'][edit]}` };
    }
  }
}

// ---------------------------------------------------------------------------------------------
// safetensors

interface StEntry {
  name: string;
  dtype: string;
  shape: number[];
  data: Uint8Array;
}

const ST_SIZES: Record<string, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

function parseSafetensors(b: Uint8Array): { entries: StEntry[]; metadata?: unknown } | undefined {
  if (b.length < 8) return undefined;
  const n = Number(readUint(b, 0, 8));
  if (8 + n > b.length) return undefined;
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  try {
    header = JSON.parse(new TextDecoder().decode(b.subarray(8, 8 + n)));
  } catch {
    return undefined;
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) return undefined;
  const entries: StEntry[] = [];
  let metadata: unknown;
  for (const [name, v] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = v;
      continue;
    }
    // An earlier mutation may have broken the header; then this one works on bytes.
    if (!Array.isArray(v?.data_offsets) || !Array.isArray(v.shape)) return undefined;
    const [s, e] = v.data_offsets;
    entries.push({ name, dtype: v.dtype, shape: v.shape, data: b.subarray(8 + n + s, 8 + n + e) });
  }
  entries.sort((x, y) => x.data.byteOffset - y.data.byteOffset);
  return { entries, metadata };
}

/** Serializes entries in order; `edit` may change the header object before it is written. */
function writeSafetensors(
  entries: StEntry[],
  metadata: unknown,
  edit?: (header: Record<string, unknown>) => void,
  headerText?: (json: string) => string,
): { bytes: Uint8Array; boundaries: number[] } {
  // No prototype, so a tensor named '__proto__' stays a key.
  const header: Record<string, unknown> = Object.create(null);
  if (metadata !== undefined) header.__metadata__ = metadata;
  let offset = 0;
  for (const e of entries) {
    header[e.name] = { dtype: e.dtype, shape: e.shape, data_offsets: [offset, offset + e.data.length] };
    offset += e.data.length;
  }
  edit?.(header);
  let json = JSON.stringify(header);
  if (headerText) json = headerText(json);
  const h = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + h.length + offset);
  writeUint(out, 0, 8, BigInt(h.length));
  out.set(h, 8);
  const boundaries = [8, 8 + h.length];
  let at = 8 + h.length;
  for (const e of entries) {
    out.set(e.data, at);
    at += e.data.length;
    boundaries.push(at);
  }
  return { bytes: out, boundaries };
}

/** A nested JSON array `depth` deep, as text. */
const deepJson = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);

function mutateSafetensors(bytes: Uint8Array, rng: Rng): Mutated | undefined {
  const st = parseSafetensors(bytes);
  if (!st) return undefined;
  const { entries, metadata } = st;
  const pickEntry = (re?: RegExp) => {
    const matching = re ? entries.filter((e) => re.test(e.name)) : entries;
    return matching.length > 0 ? rng.pick(matching) : entries.length > 0 ? rng.pick(entries) : undefined;
  };
  const variant = rng.weighted<string>([
    ['value', 3],
    ['drop', 2],
    ['reshape', 3],
    ['dtype', 2],
    ['shrink', 2],
    ['offsets', 3],
    ['shape', 3],
    ['header', 3],
    ['truncate', 2],
    ['hugeZeroDims', 1],
    ['many', 1],
  ]);
  const done = (label: string, edit?: (h: Record<string, unknown>) => void, text?: (json: string) => string): Mutated => ({
    bytes: writeSafetensors(entries, metadata, edit, text).bytes,
    label: `safetensors.${variant}:${label}`,
  });
  switch (variant) {
    case 'value': {
      const e = pickEntry(rng.pick([/running_var$/, /running_mean$/, /weight$/, /bias$/, /./]));
      if (!e) return undefined;
      const m = injectValue(e.data, rng, ST_SIZES[e.dtype] ?? 4);
      e.data = m.bytes;
      return done(`${e.name}:${m.label}`);
    }
    case 'drop': {
      const e = pickEntry(rng.pick([/running_var$/, /bn\.weight$/, /conv\.weight$/, /./]));
      if (!e) return undefined;
      entries.splice(entries.indexOf(e), 1);
      return done(e.name);
    }
    case 'reshape': {
      // Same element count, another shape: a kernel made non-square, even, flat or one rank off.
      const e = pickEntry(/weight$/);
      if (!e || e.shape.length === 0) return undefined;
      const n = e.shape.reduce((a, b) => a * b, 1);
      const [o, i, kh, kw] = e.shape.length === 4 ? e.shape : [e.shape[0], 1, 1, 1];
      const options = [[n], [o, i * kh * kw, 1, 1], [o, i, kh * kw, 1], [o * i, 1, kh, kw], [1, o, i, kh, kw], [o, i, kh, kw, 1]];
      if ((kh * kw) % 4 === 0) options.push([o, i * ((kh * kw) / 4), 2, 2]);
      if (n % 16 === 0) options.push([n / 16, 1, 4, 4]);
      e.shape = rng.pick(options);
      return done(`${e.name}->[${e.shape}]`);
    }
    case 'dtype': {
      const e = pickEntry(rng.chance(0.5) ? /weight$/ : undefined);
      if (!e) return undefined;
      const to = rng.pick(['F32', 'I32', 'F16', 'BF16', 'I16', 'F64', 'I64', 'U8', 'BOOL', 'F8_E4M3', 'f32', '__proto__']);
      const from = e.dtype;
      e.dtype = to;
      return done(`${e.name}:${from}->${to}`);
    }
    case 'shrink': {
      // Fewer channels, consistently in shape and data: a branch that no longer matches its block.
      const e = pickEntry(rng.pick([/running_var$/, /bn\.bias$/, /conv\.weight$/, /./]));
      if (!e || e.shape.length === 0 || e.shape[0] < 2) return undefined;
      const per = e.data.length / e.shape[0];
      e.shape = [e.shape[0] - 1, ...e.shape.slice(1)];
      e.data = e.data.subarray(0, per * e.shape[0]);
      return done(`${e.name}->[${e.shape}]`);
    }
    case 'offsets': {
      const e = pickEntry();
      if (!e) return undefined;
      const v = rng.pick<unknown>([
        [-4, 4],
        [0, 2 ** 53],
        [2 ** 53, 2 ** 53 + 4],
        [8, 4],
        [0],
        [0, 4, 8],
        null,
        '0,4',
        [1.5, 5.5],
        [0, 0],
        'overlap',
        'past-end',
        'reversed',
      ]);
      return done(`${e.name}=${JSON.stringify(v)}`, (h) => {
        const entry = h[e.name] as { data_offsets: number[] };
        const [b, end] = entry.data_offsets;
        entry.data_offsets =
          v === 'overlap' ? [Math.max(0, b - 4), end - 4] : v === 'past-end' ? [b, end + 1_000_000] : v === 'reversed' ? [end, b] : (v as number[]);
      });
    }
    case 'shape': {
      const e = pickEntry();
      if (!e) return undefined;
      const v = rng.pick<unknown>([
        [2 ** 31, 2 ** 31, 2 ** 31],
        [2 ** 53, 2],
        [-1, 4],
        [1.5],
        ['3'],
        [[3]],
        null,
        {},
        Array(100_000).fill(1),
        [2 ** 26, 2 ** 26, 2 ** 26, 0],
      ]);
      return done(`${e.name}=${JSON.stringify(v).slice(0, 40)}`, (h) => ((h[e.name] as { shape: unknown }).shape = v));
    }
    case 'header': {
      const which = rng.below(9);
      const name = ['len+1', 'len-1', 'len-huge', 'array', 'deep', 'metadata-object', 'proto-key', 'cut-json', 'entry-not-object'][which];
      if (which === 0 || which === 1 || which === 2) {
        const out = writeSafetensors(entries, metadata).bytes;
        const n = readUint(out, 0, 8);
        writeUint(out, 0, 8, which === 0 ? n + 1n : which === 1 ? n - 1n : rng.pick([2n ** 64n - 1n, 2n ** 53n, 100n * 1024n * 1024n + 1n]));
        return { bytes: out, label: `safetensors.header:${name}` };
      }
      return done(
        name,
        (h) => {
          if (which === 5) h.__metadata__ = { nested: { a: 1 }, n: 5 };
          if (which === 6) Object.defineProperty(h, '__proto__', { value: { dtype: 'F32', shape: [0], data_offsets: [0, 0] }, enumerable: true });
          if (which === 8 && entries[0]) h[entries[0].name] = [1, 2, 3];
        },
        (json) => {
          if (which === 3) return `[${json}]`;
          if (which === 4) return json.replace(/^\{/, `{"deep":${deepJson(rng.pick([1000, 100_000]))},`);
          if (which === 7) return json.slice(0, rng.below(json.length));
          return json;
        },
      );
    }
    case 'hugeZeroDims': {
      // No bytes at all behind dimensions in the millions: nothing may allocate from the shape alone.
      const e = pickEntry(/conv\.weight$|bn\.weight$/);
      if (!e) return undefined;
      e.shape = e.shape.length === 4 ? [rng.pick([1_000_000, 2 ** 40]), rng.pick([1_000_000, 2 ** 12]), 0, 0] : [0, 2 ** 40];
      e.data = new Uint8Array(0);
      return done(`${e.name}->[${e.shape}]`);
    }
    case 'many': {
      // Counts, not bytes: thousands of tiny blocks, or one block with thousands of numbered branches.
      const branches = rng.chance(0.5);
      const n = rng.pick(branches ? [1000, 10_000] : [1000, 5000]);
      const one = new Uint8Array(new Float32Array([1]).buffer);
      for (let i = 0; i < n; i++) {
        const module = branches ? `many.rbr_conv.${i}` : `many.${i}.rbr_dense`;
        entries.push({ name: `${module}.conv.weight`, dtype: 'F32', shape: [1, 1, 1, 1], data: one });
        for (const p of ['weight', 'bias', 'running_mean', 'running_var']) entries.push({ name: `${module}.bn.${p}`, dtype: 'F32', shape: [1], data: one });
      }
      return done(`${n}-${branches ? 'branches' : 'blocks'}`);
    }
    default: {
      const { bytes: out, boundaries } = writeSafetensors(entries, metadata);
      return truncateNear(out, boundaries, rng, 'safetensors');
    }
  }
}

// ---------------------------------------------------------------------------------------------
// ONNX

const big = (n: number | bigint) => BigInt.asUintN(64, BigInt(n));

function nested(depth: number): PMessage {
  // A node whose attribute holds a graph with such a node, `depth` times over.
  let g: PMessage = { kind: 'Graph', fields: [] };
  for (let i = 0; i < depth; i++) {
    const attr: PMessage = { kind: 'Attribute', fields: [stringField(1, 'body'), { field: 6, wire: 2, message: g }, { field: 20, wire: 0, varint: 5n }] };
    const node: PMessage = { kind: 'Node', fields: [stringField(4, 'If'), { field: 5, wire: 2, message: attr }] };
    g = { kind: 'Graph', fields: [{ field: 1, wire: 2, message: node }] };
  }
  return g;
}

function mutateOnnx(bytes: Uint8Array, rng: Rng): Mutated | undefined {
  const model = decodeMessage(bytes, 'Model');
  const graph = model?.fields.find((f) => f.field === 7)?.message;
  if (!model || !graph) return undefined;
  const fields = allFields(model);
  const tensors = fields.filter(({ f }) => f.message?.kind === 'Tensor').map(({ f }) => f.message!);
  if (tensors.length === 0) return undefined;
  const nodes = graph.fields.filter((f) => f.field === 1 && f.message).map((f) => f.message!);
  const variant = rng.weighted<string>([
    ['truncate', 2],
    ['dims', 3],
    ['rawData', 3],
    ['lengthLie', 3],
    ['dataType', 2],
    ['external', 2],
    ['graph', 3],
    ['nest', 1],
    ['wire', 2],
    ['dupDrop', 2],
    ['typed', 1],
    ['value', 2],
  ]);
  let label: string;
  const getField = (m: PMessage, n: number) => m.fields.find((f) => f.field === n);
  switch (variant) {
    case 'truncate': {
      const { bytes: out, boundaries } = encodeMessage(model);
      return truncateNear(out, boundaries, rng, 'onnx');
    }
    case 'dims': {
      const t = rng.pick(tensors);
      const dims = t.fields.filter((f) => f.field === 1 && f.wire === 0);
      if (dims.length === 0) return undefined;
      if (rng.chance(0.25)) {
        for (const d of dims) d.varint = big(2 ** 21);
        label = 'all-dims=2^21';
      } else {
        const d = rng.pick(dims);
        d.varint = big(rng.pick<number | bigint>([0, 1, -1, 2 ** 31, 2 ** 32, 2 ** 40, 2 ** 53, 2n ** 63n - 1n, Number(d.varint) + 1, Number(d.varint) * 2]));
        label = `dim=${BigInt.asIntN(64, d.varint)}`;
      }
      break;
    }
    case 'rawData': {
      const withRaw = tensors.filter((t) => getField(t, 9));
      if (withRaw.length === 0) return undefined;
      const t = rng.pick(withRaw);
      const raw = getField(t, 9)!;
      const edit = rng.below(4);
      if (edit === 0) raw.bytes = raw.bytes!.subarray(0, Math.max(0, raw.bytes!.length - rng.pick([1, 4, 7])));
      else if (edit === 1) raw.bytes = pk(raw.bytes!, new Uint8Array(rng.pick([1, 4, 64])));
      else if (edit === 2) t.fields.splice(t.fields.indexOf(raw), 1);
      else t.fields.push({ ...raw });
      label = ['shorter', 'longer', 'removed', 'twice'][edit];
      break;
    }
    case 'lengthLie': {
      const lens = fields.filter(({ f }) => f.wire === 2);
      const { f } = rng.pick(lens);
      const real = BigInt(f.message ? encodeMessage(f.message).bytes.length : f.bytes!.length);
      f.lieLength = rng.pick([real + 1n, real - 1n, real + 100n, 2n ** 32n, 2n ** 50n, 2n ** 63n, 0n]);
      if (f.lieLength < 0n) f.lieLength = 0n;
      label = `field${f.field}:${real}->${f.lieLength}`;
      break;
    }
    case 'dataType': {
      const t = rng.pick(tensors);
      const v = rng.pick([0, 8, 12, 13, 14, 99, -1, 1, 7, 10, 16, 2, 9]);
      const dt = getField(t, 2);
      if (dt) dt.varint = big(v);
      else t.fields.push({ field: 2, wire: 0, varint: big(v) });
      label = `data_type=${v}`;
      break;
    }
    case 'external': {
      const t = rng.pick(tensors);
      const location = rng.pick([
        'repvgg_tiny_external.onnx.data',
        '../models/repvgg_tiny_external.onnx.data',
        '/etc/passwd',
        '',
        'a\u0000b',
        '.',
        'repvgg_tiny_train.pth',
        'no_such_file',
        '../../../../../../etc/hostname',
      ]);
      const entry = (k: string, v: string): PField => ({ field: 13, wire: 2, message: { kind: 'Entry', fields: [stringField(1, k), stringField(2, v)] } });
      t.fields = t.fields.filter((f) => f.field !== 9 && f.field !== 13 && f.field !== 14);
      t.fields.push(entry('location', location), { field: 14, wire: 0, varint: big(rng.pick([1, 1, 1, 2, -1])) });
      if (rng.chance(0.6)) t.fields.push(entry('offset', rng.pick(['0', '4', '-1', '99999999999999999', 'abc', '1e3', '127968'])));
      if (rng.chance(0.6)) t.fields.push(entry('length', rng.pick(['0', '16', '4096', '99999999999999999', ' 16'])));
      label = `location=${JSON.stringify(location)}`;
      break;
    }
    case 'graph': {
      if (nodes.length === 0) return undefined;
      const a = rng.pick(nodes);
      const b = rng.pick(nodes);
      const inputs = a.fields.filter((f) => f.field === 1);
      const output = b.fields.find((f) => f.field === 2);
      const edit = rng.below(5);
      if (edit === 0 && inputs.length > 0 && output) rng.pick(inputs).bytes = output.bytes;
      else if (edit === 1 && inputs.length > 0) rng.pick(inputs).bytes = stringField(1, 'dangling_input').bytes;
      else if (edit === 2) {
        const own = a.fields.find((f) => f.field === 2);
        if (own) a.fields.push({ field: 1, wire: 2, bytes: own.bytes });
      } else if (edit === 3)
        graph.fields.splice(
          graph.fields.findIndex((f) => f.message === a),
          1,
        );
      else {
        // Initializer names duplicated or removed.
        const initializers = graph.fields.filter((f) => f.field === 5 && f.message);
        const t = initializers.length > 0 ? rng.pick(initializers) : undefined;
        if (t) {
          if (rng.chance(0.5)) graph.fields.push({ ...t });
          else t.message!.fields = t.message!.fields.filter((f) => f.field !== 8);
        }
      }
      label = ['cycle', 'dangling', 'self-loop', 'drop-node', 'initializer-names'][edit];
      break;
    }
    case 'nest': {
      const depth = rng.pick([8, 40, 62, 63, 64, 65, 300]);
      const node = nested(depth).fields[0];
      graph.fields.push(node);
      label = `subgraphs×${depth}`;
      break;
    }
    case 'wire': {
      const { f } = rng.pick(fields);
      const to = rng.pick([0, 1, 2, 3, 4, 5, 6, 7].filter((w) => w !== f.wire));
      f.wire = to;
      if (to === 0) f.varint ??= 1n;
      if (to === 1 || to === 5) f.bytes = (f.bytes ?? new Uint8Array(8)).subarray(0, to === 1 ? 8 : 4);
      label = `field${f.field}->wire${to}`;
      break;
    }
    case 'dupDrop': {
      const { parent, f } = rng.pick(fields);
      const edit = rng.below(3);
      if (edit === 0) parent.fields.push({ ...f });
      else if (edit === 1) parent.fields.splice(parent.fields.indexOf(f), 1);
      else {
        // ir_version, graph or opset_import missing.
        const n = rng.pick([1, 7, 8]);
        model.fields = model.fields.filter((x) => x.field !== n);
      }
      label = `${['duplicate', 'drop', 'drop-required'][edit]}:field${f.field}`;
      break;
    }
    case 'typed': {
      const withRaw = tensors.filter((t) => getField(t, 9));
      if (withRaw.length === 0) return undefined;
      const t = rng.pick(withRaw);
      const raw = getField(t, 9)!;
      t.fields.splice(t.fields.indexOf(raw), 1);
      const n = raw.bytes!.length / 4 + rng.pick([0, 0, 1, -1]);
      t.fields.push({ field: 4, wire: 2, bytes: new Uint8Array(Math.max(0, n) * 4) });
      label = `float_data×${n}`;
      break;
    }
    default: {
      const withRaw = tensors.filter((t) => getField(t, 9));
      if (withRaw.length === 0) return undefined;
      const raw = getField(rng.pick(withRaw), 9)!;
      const m = injectValue(raw.bytes!, rng, 4);
      raw.bytes = m.bytes;
      label = m.label;
    }
  }
  return { bytes: encodeMessage(model).bytes, label: `onnx.${variant}:${label}` };
}

// ---------------------------------------------------------------------------------------------
// Byte-level, any format

function mutateBytes(bytes: Uint8Array, rng: Rng, corpus: Corpus): Mutated {
  const variant = rng.weighted<string>([
    ['flip', 4],
    ['int', 2],
    ['truncate', 2],
    ['insert', 1],
    ['delete', 1],
    ['duplicate', 1],
    ['splice', 1],
  ]);
  const n = bytes.length;
  // Headers and trailers hold most of the structure, so half the positions land there.
  const pos = () =>
    n === 0 ? 0 : rng.chance(0.5) ? rng.below(n) : rng.chance(0.5) ? rng.below(Math.min(n, 1024)) : Math.max(0, n - 1 - rng.below(Math.min(n, 1024)));
  switch (variant) {
    case 'flip': {
      const out = bytes.slice();
      const k = rng.int(1, 8);
      for (let i = 0; i < k && n > 0; i++) out[pos()] ^= 1 << rng.below(8);
      return { bytes: out, label: `bytes.flip:×${k}` };
    }
    case 'int': {
      const out = bytes.slice();
      const size = rng.pick([2, 4, 8]);
      const at = pos();
      const v = interesting(rng, size, readUint(out, at, size), n);
      writeUint(out, at, size, v);
      return { bytes: out, label: `bytes.int:u${size * 8}@${at}=${v}` };
    }
    case 'truncate': {
      const at = pos();
      return { bytes: bytes.subarray(0, at), label: `bytes.truncate:@${at}` };
    }
    case 'insert': {
      const at = pos();
      const ins = new Uint8Array(rng.int(1, 64)).map(() => rng.below(256));
      return { bytes: splice(bytes, at, at, ins), label: `bytes.insert:${ins.length}@${at}` };
    }
    case 'delete': {
      const at = pos();
      const len = rng.int(1, 256);
      return { bytes: splice(bytes, at, Math.min(n, at + len), undefined), label: `bytes.delete:${len}@${at}` };
    }
    case 'duplicate': {
      const at = pos();
      const len = rng.int(1, 4096);
      return { bytes: splice(bytes, at, at, bytes.slice(at, at + len)), label: `bytes.duplicate:${len}@${at}` };
    }
    default: {
      const other = rng.pick(corpus.seeds);
      const a = pos();
      const b = rng.below(Math.max(1, other.bytes.length));
      return { bytes: pk(bytes.subarray(0, a), other.bytes.subarray(b)), label: `bytes.splice:@${a}+${other.name}@${b}` };
    }
  }
}

/** One mutation aimed at the bytes' format (three times in four), or a byte-level one. */
function mutateOnce(bytes: Uint8Array, rng: Rng, corpus: Corpus): Mutated {
  if (rng.chance(0.75)) {
    let m: Mutated | undefined;
    switch (formatOf(bytes)) {
      case 'zip':
        m = mutateZip(bytes, rng, corpus);
        break;
      case 'legacy':
        m = mutateLegacy(bytes, rng);
        break;
      case 'safetensors':
        m = mutateSafetensors(bytes, rng);
        break;
      case 'onnx':
        m = mutateOnnx(bytes, rng);
        break;
      case 'other':
        break;
    }
    if (m) return m;
  }
  return mutateBytes(bytes, rng, corpus);
}

/**
 * Case `index` of a run seeded with `seed`. `keep` selects which of the case's `planned`
 * mutations to apply (all by default), so a finding can be reduced to the mutations it needs.
 */
export function generateCase(corpus: Corpus, seed: number, index: number, keep?: readonly boolean[]): FuzzCase & { planned: number } {
  const pick = new Rng(seed, index, 0x5eed);
  const fixture = pick.pick(corpus.seeds);
  const planned = pick.weighted<number>([
    [1, 6],
    [2, 3],
    [3, 1],
  ]);
  let bytes = fixture.bytes;
  const ops: string[] = [];
  for (let k = 0; k < planned; k++) {
    if (keep && !keep[k]) continue;
    const m = mutateOnce(bytes, new Rng(seed, index, k), corpus);
    bytes = m.bytes;
    ops.push(m.label);
  }
  return { seed: fixture, ops, bytes, planned };
}
