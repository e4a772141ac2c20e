import type { Rng } from './rng';
import { ALL_OPCODES, OP, global, pk, scanPickle, u32le, unicode, type PickleOp } from './pickleOps';

/*
 * Mutations of one pickle (a zip's data.pkl, a legacy file's main pickle): cuts and edits
 * at opcode boundaries, inflated lengths, memo abuse, deep nesting, huge pickles,
 * payloads, and edits of the names and integers a checkpoint is made of.
 */

export interface Mutated {
  bytes: Uint8Array;
  label: string;
}

const MARKER = '/tmp/replens-pwned-marker';
const SHELL = `touch ${MARKER}`;

function splice(data: Uint8Array, start: number, end: number, insert: Uint8Array = new Uint8Array(0)): Uint8Array {
  const out = new Uint8Array(data.length - (end - start) + insert.length);
  out.set(data.subarray(0, start), 0);
  out.set(insert, start);
  out.set(data.subarray(end), start + insert.length);
  return out;
}

/** Inserts `value`-building ops as root[key] just before the final STOP (the root is on the stack there). */
export function setRootItem(ops: PickleOp[], data: Uint8Array, key: string, value: Uint8Array): Uint8Array {
  const stop = ops[ops.length - 1];
  return splice(data, stop.pos, stop.pos, pk(unicode(key), value, OP.SETITEM));
}

function repeat(unit: number[] | Uint8Array, n: number): Uint8Array {
  const u = Uint8Array.from(unit);
  const out = new Uint8Array(u.length * n);
  for (let i = 0; i < n; i++) out.set(u, i * u.length);
  return out;
}

const cmd = unicode(SHELL);

/**
 * Code-execution payloads, each through a different opcode path that calls a callable, with
 * the callables Python would run. Each leaves one value on the stack.
 */
export const PAYLOADS: readonly { name: string; ops: Uint8Array; calls: string[] }[] = [
  { name: 'REDUCE os.system', ops: pk(global('os', 'system'), cmd, OP.TUPLE1, OP.REDUCE), calls: ['os.system'] },
  {
    name: 'REDUCE builtins.eval',
    ops: pk(global('builtins', 'eval'), unicode(`__import__('os').system('${SHELL}')`), OP.TUPLE1, OP.REDUCE),
    calls: ['builtins.eval'],
  },
  { name: 'STACK_GLOBAL posix.system', ops: pk(unicode('posix'), unicode('system'), OP.STACK_GLOBAL, cmd, OP.TUPLE1, OP.REDUCE), calls: ['posix.system'] },
  { name: 'INST os.system', ops: pk(OP.MARK, cmd, OP.INST, 'os\nsystem\n'), calls: ['os.system'] },
  { name: 'OBJ subprocess.call', ops: pk(OP.MARK, global('subprocess', 'call'), cmd, OP.OBJ), calls: ['subprocess.call'] },
  { name: 'NEWOBJ os.system', ops: pk(global('os', 'system'), cmd, OP.TUPLE1, OP.NEWOBJ), calls: ['os.system'] },
  { name: 'NEWOBJ_EX os.system', ops: pk(global('os', 'system'), cmd, OP.TUPLE1, OP.EMPTY_DICT, OP.NEWOBJ_EX), calls: ['os.system'] },
  {
    name: 'BUILD __setstate__ os.system',
    ops: pk(
      global('collections', 'OrderedDict'),
      OP.EMPTY_TUPLE,
      OP.REDUCE,
      OP.EMPTY_DICT,
      unicode('__setstate__'),
      global('os', 'system'),
      OP.SETITEM,
      OP.BUILD,
      cmd,
      OP.BUILD,
    ),
    calls: ['os.system'],
  },
  {
    name: 'REDUCE getattr(__import__("os"), "system")',
    ops: pk(
      global('builtins', 'getattr'),
      global('builtins', '__import__'),
      unicode('os'),
      OP.TUPLE1,
      OP.REDUCE,
      unicode('system'),
      OP.TUPLE2,
      OP.REDUCE,
      cmd,
      OP.TUPLE1,
      OP.REDUCE,
    ),
    calls: ['builtins.getattr', 'builtins.__import__'],
  },
  {
    // As a tensor rebuild argument: torch.load would run it while rebuilding the tensor.
    name: '_rebuild_from_type_v2 of os.system',
    ops: pk(global('torch._tensor', '_rebuild_from_type_v2'), OP.MARK, global('os', 'system'), OP.NONE, cmd, OP.TUPLE1, OP.EMPTY_DICT, OP.TUPLE, OP.REDUCE),
    calls: ['os.system'],
  },
];

/** Allow-listed and other names a GLOBAL can be switched to. */
const GLOBAL_SWAPS: readonly [string, string][] = [
  ['torch', 'DoubleStorage'],
  ['torch', 'HalfStorage'],
  ['torch', 'CharStorage'],
  ['torch', 'LongStorage'],
  ['torch', 'BoolStorage'],
  ['torch', 'ComplexFloatStorage'],
  ['torch', 'QInt8Storage'],
  ['torch', 'NoSuchStorage'],
  ['torch', 'UntypedStorage'],
  ['torch._utils', '_rebuild_tensor'],
  ['torch._utils', '_rebuild_parameter'],
  ['torch._tensor', '_rebuild_from_type_v2'],
  ['torch', 'Size'],
  ['torch', 'float32'],
  ['collections', 'OrderedDict'],
  ['builtins', 'set'],
  ['builtins', 'frozenset'],
  ['builtins', 'bytearray'],
  ['_codecs', 'encode'],
  ['copyreg', '_reconstructor'],
  ['numpy.core.multiarray', 'scalar'],
  ['torch.jit._pickle', 'build_intlist'],
  ['os', 'system'],
  ['torch.nn.modules.conv', 'Conv2d'],
];

const BIG_INTS = [0, 1, 2, 3, 4, 255, 65535, 0x7fffffff, 0x80000000, 0xffffffff, 2 ** 40, 2 ** 53 - 1, 2 ** 53, -1, -(2 ** 31)];

/** An integer as the smallest opcode that pickles it. */
function intOp(v: number | bigint): Uint8Array {
  const n = BigInt(v);
  if (n >= 0n && n < 256n) return pk(OP.BININT1, Number(n));
  if (n >= 0n && n < 65536n) return pk(OP.BININT2, Number(n) & 0xff, Number(n) >> 8);
  if (n >= -(2n ** 31n) && n < 2n ** 31n) return pk(OP.BININT, u32le(Number(BigInt.asUintN(32, n))));
  const bytes: number[] = [];
  let x = BigInt.asUintN(72, n);
  for (let i = 0; i < 9; i++, x >>= 8n) bytes.push(Number(x & 0xffn));
  return pk(OP.LONG1, bytes.length, bytes);
}

function isIntOp(op: number): boolean {
  return op === OP.BININT1 || op === OP.BININT2 || op === OP.BININT || op === OP.LONG1;
}

function stringOps(ops: PickleOp[]): PickleOp[] {
  return ops.filter((o) => o.op === 0x58 || o.op === 0x8c || o.op === 0x55);
}

type PickleMutator = (data: Uint8Array, ops: PickleOp[], rng: Rng) => Mutated | undefined;

const MUTATORS: Record<string, [PickleMutator, number]> = {
  truncate: [
    (data, ops, rng) => {
      const k = rng.below(ops.length);
      const stop = rng.chance(0.6);
      const cut = data.subarray(0, ops[k].pos);
      return { bytes: stop ? pk(cut, OP.STOP) : cut, label: `cut-at-op${k}${stop ? '+STOP' : ''}` };
    },
    3,
  ],
  deleteOp: [
    (data, ops, rng) => {
      const o = rng.pick(ops.slice(0, -1));
      return { bytes: splice(data, o.pos, o.end), label: `delete-op@${o.pos}(0x${o.op.toString(16)})` };
    },
    3,
  ],
  duplicateOp: [
    (data, ops, rng) => {
      const o = rng.pick(ops.slice(0, -1));
      return { bytes: splice(data, o.end, o.end, data.slice(o.pos, o.end)), label: `duplicate-op@${o.pos}(0x${o.op.toString(16)})` };
    },
    2,
  ],
  replaceOpcode: [
    (data, ops, rng) => {
      const o = rng.pick(ops);
      const structural = [
        OP.MARK,
        OP.POP,
        OP.TUPLE,
        OP.REDUCE,
        OP.BUILD,
        OP.SETITEMS,
        OP.APPENDS,
        OP.STOP,
        OP.EMPTY_DICT,
        OP.BINGET,
        OP.SETITEM,
        OP.APPEND,
        OP.NEWOBJ,
        OP.BINPERSID,
        OP.DUP,
        OP.POP_MARK,
        OP.TUPLE1,
        OP.STACK_GLOBAL,
        OP.FROZENSET,
        OP.ADDITEMS,
      ];
      const b = rng.chance(0.7) ? rng.pick(structural) : rng.chance(0.8) ? rng.pick(ALL_OPCODES) : rng.below(256);
      const out = data.slice();
      out[o.pos] = b;
      return { bytes: out, label: `opcode@${o.pos}:0x${o.op.toString(16)}->0x${b.toString(16)}` };
    },
    3,
  ],
  inflateLength: [
    (data, ops, rng) => {
      const withLen = ops.filter((o) => o.lenField);
      if (withLen.length === 0) return undefined;
      const o = rng.pick(withLen);
      const f = o.lenField!;
      const out = data.slice();
      const dv = new DataView(out.buffer);
      const cur = f.size === 1 ? out[f.pos] : f.size === 4 ? dv.getUint32(f.pos, true) : Number(dv.getBigUint64(f.pos, true));
      const v = rng.pick([cur + 1, cur - 1, cur * 2 + 7, 0, 0xff, 0x7fffffff, 0x80000000, 0xffffffff, 2 ** 40, 2 ** 53, data.length]);
      if (f.size === 1) out[f.pos] = v & 0xff;
      else if (f.size === 4) dv.setUint32(f.pos, v >>> 0, true);
      else dv.setBigUint64(f.pos, BigInt.asUintN(64, BigInt(Math.max(0, Math.floor(v)))), true);
      return { bytes: out, label: `length@${o.pos}(0x${o.op.toString(16)}):${cur}->${v}` };
    },
    3,
  ],
  frame: [
    (data, ops, rng) => {
      // A FRAME whose length lies, right after PROTO.
      const at = ops[0]?.op === OP.PROTO ? ops[0].end : 0;
      const len = rng.pick([0, 1, data.length, 2 ** 32, 2 ** 53, 2 ** 62]);
      const b = new Uint8Array(9);
      b[0] = OP.FRAME;
      new DataView(b.buffer).setBigUint64(1, BigInt(len), true);
      return { bytes: splice(data, at, at, b), label: `frame-len=${len}` };
    },
    1,
  ],
  memo: [
    (data, ops, rng) => {
      const gets = ops.filter((o) => o.op === OP.BINGET || o.op === OP.LONG_BINGET);
      const variant = rng.below(6);
      const out = data.slice();
      if (variant === 0 && gets.length > 0) {
        const g = rng.pick(gets);
        if (g.op === OP.BINGET) out[g.pos + 1] = 255;
        else new DataView(out.buffer).setUint32(g.pos + 1, rng.pick([0xffffffff, 0x7fffffff, 1_000_000]), true);
        return { bytes: out, label: `get-unset@${g.pos}` };
      }
      const pushes = ops.filter((o) => o.op !== OP.STOP && o.op !== OP.MARK && o.op !== OP.PROTO);
      const at = pushes.length > 0 ? rng.pick(pushes) : ops[0];
      switch (variant) {
        case 1:
          return { bytes: splice(data, at.end, at.end, pk(OP.LONG_BINPUT, u32le(0xffffffff))), label: `put-0xffffffff@${at.end}` };
        case 2:
          return { bytes: splice(data, at.end, at.end, pk(0x70, '9999999999\n', 0x67, '9999999999\n', OP.POP)), label: `put-get-text-huge@${at.end}` };
        case 3:
          return { bytes: splice(data, at.end, at.end, pk(0x67, '4294967296\n')), label: `get-text-unset@${at.end}` };
        case 4: {
          const n = rng.pick([1000, 100_000, 5_000_001]);
          return { bytes: splice(data, at.end, at.end, repeat([OP.MEMOIZE], n)), label: `memoize×${n}@${at.end}` };
        }
        default: {
          // GET of an index that is only PUT later.
          const first = ops.find((o) => o.op === OP.BINPUT);
          return first && { bytes: splice(data, ops[1]?.pos ?? 0, ops[1]?.pos ?? 0, pk(OP.BINGET, data[first.pos + 1])), label: 'get-before-put' };
        }
      }
    },
    3,
  ],
  deepNest: [
    (data, ops, rng) => {
      const depth = rng.pick([1000, 10_001, 100_000, 1_000_000]);
      const variant = rng.below(5);
      let value: Uint8Array;
      let name: string;
      switch (variant) {
        case 0:
          value = pk(repeat([OP.EMPTY_LIST], depth), repeat([OP.APPEND], depth - 1));
          name = 'lists';
          break;
        case 1:
          value = pk(OP.NONE, repeat([OP.TUPLE1], depth));
          name = 'tuples';
          break;
        case 2:
          value = pk(repeat(pk(OP.EMPTY_DICT, unicode('k')), depth - 1), OP.EMPTY_DICT, repeat([OP.SETITEM], depth - 1));
          name = 'dicts';
          break;
        case 3:
          value = pk(repeat([OP.MARK], depth), OP.NONE, repeat([OP.TUPLE], depth));
          name = 'marks';
          break;
        default: {
          // A list that contains itself.
          value = pk(OP.EMPTY_LIST, OP.LONG_BINPUT, u32le(900_000), OP.LONG_BINGET, u32le(900_000), OP.APPEND);
          name = 'self-list';
        }
      }
      const key = rng.pick(['deep', 'state_dict', 'model']);
      return { bytes: setRootItem(ops, data, key, value), label: `nest-${name}${variant < 4 ? `×${depth}` : ''}-as-${key}` };
    },
    2,
  ],
  huge: [
    (data, ops, rng) => {
      const n = rng.pick([100_000, 1_000_000, 4_900_000]);
      const variant = rng.below(5);
      const name = ['dicts', 'ints', 'lists', 'long4', 'long-text'][variant];
      let items: Uint8Array;
      if (variant === 0) items = repeat([OP.EMPTY_DICT], n);
      else if (variant === 1) items = repeat([OP.BININT1, 7], n);
      else if (variant === 2) items = repeat([OP.EMPTY_LIST], n);
      // The largest integers the machine accepts, as many as fit in n bytes.
      else if (variant === 3) items = repeat(pk(OP.LONG4, u32le(8192), new Uint8Array(8192).fill(0x5a)), Math.ceil(n / 8197));
      else items = repeat(pk(0x4c, '9'.repeat(8192), '\n'), Math.ceil(n / 8194));
      return { bytes: setRootItem(ops, data, 'huge', pk(OP.EMPTY_LIST, OP.MARK, items, OP.APPENDS)), label: `huge-list:${n}-bytes-of-${name}` };
    },
    1,
  ],
  payload: [
    (data, ops, rng) => {
      const p = rng.pick(PAYLOADS);
      if (rng.chance(0.5)) return { bytes: setRootItem(ops, data, 'evil', p.ops), label: `payload-entry:${p.name}` };
      // Or in place of a value: a class or function the pickle names becomes os.system.
      const globals = ops.filter((o) => o.op === 0x63);
      if (globals.length === 0) return undefined;
      const g = rng.pick(globals);
      return { bytes: splice(data, g.pos, g.end, global('os', 'system')), label: `payload-global@${g.pos}` };
    },
    2,
  ],
  globalSwap: [
    (data, ops, rng) => {
      const globals = ops.filter((o) => o.op === 0x63);
      if (globals.length === 0) return undefined;
      const g = rng.pick(globals);
      const [m, n] = rng.pick(GLOBAL_SWAPS);
      return { bytes: splice(data, g.pos, g.end, global(m, n)), label: `global@${g.pos}->${m}.${n}` };
    },
    3,
  ],
  integer: [
    (data, ops, rng) => {
      const ints = ops.filter((o) => isIntOp(o.op));
      if (ints.length === 0) return undefined;
      const o = rng.pick(ints);
      const v = rng.pick(BIG_INTS);
      return { bytes: splice(data, o.pos, o.end, intOp(v)), label: `int@${o.pos}->${v}` };
    },
    4,
  ],
  renameKey: [
    (data, ops, rng) => {
      const strings = stringOps(ops);
      if (strings.length === 0) return undefined;
      const o = rng.pick(strings);
      const start = o.end - (o.op === 0x58 ? new DataView(data.buffer, data.byteOffset).getUint32(o.pos + 1, true) : data[o.pos + 1]);
      const text = new TextDecoder().decode(data.subarray(start, o.end));
      const edits: [RegExp, string][] = [
        [/running_var$/, 'running_vbr'],
        [/running_mean$/, 'running_mea_'],
        [/\.weight$/, '.weigh_'],
        [/\.bias$/, '.bia_'],
        [/rbr_1x1/, 'rbr_1y1'],
        [/rbr_identity/, 'rbr_identitx'],
        [/rbr_dense/, 'rbr_reparam'],
        [/\.bn\./, '.bm.'],
        [/^/, 'module.'],
        [/\d+/, '999'],
        [/^.*$/, ''],
        [/^.*$/, '\uFFFD'.repeat(3)],
      ];
      const [re, to] = rng.pick(edits);
      const renamed = text.replace(re, to);
      return { bytes: splice(data, o.pos, o.end, unicode(renamed)), label: `rename@${o.pos}:'${text.slice(0, 60)}'->'${renamed.slice(0, 60)}'` };
    },
    4,
  ],
  badString: [
    (data, ops, rng) => {
      const strings = stringOps(ops);
      if (strings.length === 0) return undefined;
      const o = rng.pick(strings);
      const variants: [string, Uint8Array][] = [
        ['invalid-utf8', pk(0x58, u32le(3), 0xff, 0xfe, 0xc0)],
        ['nul', unicode('a\u0000b')],
        ['long', unicode('x'.repeat(100_000))],
        ['proto', unicode('__proto__')],
        ['binstring-negative', pk(0x54, u32le(0xfffffff0))],
      ];
      const [name, b] = rng.pick(variants);
      return { bytes: splice(data, o.pos, o.end, b), label: `string@${o.pos}:${name}` };
    },
    2,
  ],
};

const TABLE = Object.entries(MUTATORS).map(([name, [fn, w]]) => [[name, fn] as const, w] as const);

/** Past this, a pickle is already one of the huge or deep ones; listing its opcodes again costs more than it finds. */
const MAX_SCANNED = 1 << 20;

/** One mutation of a pickle; byte-level edits when it does not parse as a complete pickle. */
export function mutatePickle(data: Uint8Array, rng: Rng): Mutated {
  const { ops, complete } = data.length <= MAX_SCANNED ? scanPickle(data) : { ops: [], complete: false };
  if (complete && ops.length > 1) {
    for (let attempt = 0; attempt < 4; attempt++) {
      const [name, fn] = rng.weighted(TABLE);
      const m = fn(data, ops, rng);
      if (m) return { bytes: m.bytes, label: `pickle.${name}:${m.label}` };
    }
  }
  const out = data.slice();
  const at = rng.below(Math.max(1, out.length));
  out[at] ^= 1 + rng.below(255);
  return { bytes: out, label: `pickle.flip:@${at}` };
}
