/*
 * Just enough pickle knowledge to mutate a pickle at opcode boundaries: where each
 * opcode starts, how long its argument is, and where a length field sits.
 */

/** Argument layouts; ARGS maps each opcode byte to one (0: not an opcode). */
const enum Arg {
  Unknown,
  None,
  U8,
  U16,
  U32,
  U64,
  Line,
  Line2,
  Len8,
  Len32,
  Len64,
}

const ARGS = new Uint8Array(256);
const set = (kind: Arg, ops: string) => {
  for (const c of ops) ARGS[c.charCodeAt(0)] = kind;
};
set(Arg.None, '(.0125NRabd}el]ost)uQ\x81\x85\x86\x87\x88\x89\x8f\x90\x91\x92\x93\x94\x97\x98');
set(Arg.U8, '\x80Khq\x82');
set(Arg.U16, 'M\x83');
set(Arg.U32, 'Jjr\x84');
set(Arg.U64, 'G\x95');
set(Arg.Line, 'ILFSVpgP');
set(Arg.Line2, 'ci');
set(Arg.Len8, 'UC\x8c\x8a');
set(Arg.Len32, 'TBX\x8b');
set(Arg.Len64, '\x8d\x8e\x96');

export interface PickleOp {
  /** Offset of the opcode byte. */
  pos: number;
  op: number;
  /** Offset just past the opcode and its argument. */
  end: number;
  /** The length field of a length-prefixed argument, if any. */
  lenField?: { pos: number; size: 1 | 4 | 8 };
}

/**
 * Opcodes from `start` to STOP (inclusive); stops early at anything it cannot parse.
 * With `collect` false only the last opcode is kept (finding the end of a huge pickle).
 */
export function scanPickle(data: Uint8Array, start = 0, collect = true): { ops: PickleOp[]; complete: boolean } {
  const ops: PickleOp[] = [];
  let p = start;
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  while (p < data.length) {
    const op = data[p];
    const kind = ARGS[op];
    if (kind === Arg.Unknown) return { ops, complete: false };
    let q = p + 1;
    let lenField: PickleOp['lenField'];
    switch (kind) {
      case Arg.None:
        break;
      case Arg.U8:
        q += 1;
        break;
      case Arg.U16:
        q += 2;
        break;
      case Arg.U32:
        q += 4;
        break;
      case Arg.U64:
        q += 8;
        break;
      case Arg.Line:
      case Arg.Line2: {
        for (let lines = kind === Arg.Line ? 1 : 2; lines > 0; lines--) {
          const nl = data.indexOf(0x0a, q);
          if (nl < 0) return { ops, complete: false };
          q = nl + 1;
        }
        break;
      }
      case Arg.Len8:
        if (q + 1 > data.length) return { ops, complete: false };
        lenField = { pos: q, size: 1 };
        q += 1 + data[q];
        break;
      case Arg.Len32:
        if (q + 4 > data.length) return { ops, complete: false };
        lenField = { pos: q, size: 4 };
        q += 4 + dv.getUint32(q, true);
        break;
      case Arg.Len64:
        if (q + 8 > data.length) return { ops, complete: false };
        lenField = { pos: q, size: 8 };
        q += 8 + Number(dv.getBigUint64(q, true));
        break;
    }
    if (q > data.length) return { ops, complete: false };
    if (collect || op === 0x2e) ops.push({ pos: p, op, end: q, lenField });
    p = q;
    if (op === 0x2e) return { ops, complete: true };
  }
  return { ops, complete: false };
}

/** Assembles pickle bytes: numbers are bytes, strings latin-1, arrays spliced. */
export function pk(...parts: (number | string | Uint8Array | readonly number[])[]): Uint8Array {
  const out = new Uint8Array(parts.reduce<number>((n, p) => n + (typeof p === 'number' ? 1 : p.length), 0));
  let o = 0;
  for (const p of parts) {
    if (typeof p === 'number') out[o++] = p;
    else if (typeof p === 'string') for (let i = 0; i < p.length; i++) out[o++] = p.charCodeAt(i) & 0xff;
    else {
      out.set(p, o);
      o += p.length;
    }
  }
  return out;
}

export function u32le(n: number): number[] {
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
}

/** BINUNICODE of a string. */
export function unicode(s: string): Uint8Array {
  const b = new TextEncoder().encode(s);
  return pk(0x58, u32le(b.length), b);
}

/** GLOBAL module.name (protocol 0 text form, which every protocol accepts). */
export function global(module: string, name: string): Uint8Array {
  return pk(0x63, `${module}\n${name}\n`);
}

export const OP = {
  MARK: 0x28,
  STOP: 0x2e,
  POP: 0x30,
  NONE: 0x4e,
  REDUCE: 0x52,
  APPEND: 0x61,
  BUILD: 0x62,
  EMPTY_DICT: 0x7d,
  APPENDS: 0x65,
  EMPTY_LIST: 0x5d,
  OBJ: 0x6f,
  SETITEM: 0x73,
  TUPLE: 0x74,
  EMPTY_TUPLE: 0x29,
  SETITEMS: 0x75,
  BINGET: 0x68,
  LONG_BINGET: 0x6a,
  BINPUT: 0x71,
  LONG_BINPUT: 0x72,
  MEMOIZE: 0x94,
  NEWOBJ: 0x81,
  NEWOBJ_EX: 0x92,
  TUPLE1: 0x85,
  TUPLE2: 0x86,
  STACK_GLOBAL: 0x93,
  INST: 0x69,
  BININT1: 0x4b,
  BININT2: 0x4d,
  BININT: 0x4a,
  LONG1: 0x8a,
  LONG4: 0x8b,
  BINPERSID: 0x51,
  EMPTY_SET: 0x8f,
  ADDITEMS: 0x90,
  FROZENSET: 0x91,
  DUP: 0x32,
  POP_MARK: 0x31,
  PROTO: 0x80,
  FRAME: 0x95,
} as const;

/** Every opcode byte the scanner knows, for blind replacement. */
export const ALL_OPCODES = [...ARGS.keys()].filter((op) => ARGS[op] !== Arg.Unknown);
