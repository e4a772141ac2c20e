import { ModelFormatError } from './errors';

/*
 * A pickle reader that never runs anything. Python's unpickler imports and
 * calls whatever a file names; this one builds data only. Names it knows
 * (OrderedDict, set, torch's tensor rebuilders, ...) map to TypeScript
 * constructors; every other class or function becomes an inert placeholder
 * that records what the file asked for.
 *
 * Value mapping: None -> null, bool -> boolean, int -> number (bigint when
 * not a safe integer), float -> number, str -> string, bytes/bytearray ->
 * Uint8Array, list -> mutable array, tuple -> frozen array, dict ->
 * PyDict, set/frozenset -> PySet, class or function -> PyGlobal, instance
 * of an unknown class -> PyObject.
 */

/** Values produced by constructors the caller implements (tensors, storages, dtypes). */
export abstract class PyNative {
  /** Short human-readable description, e.g. "tensor float32 [8, 3, 3, 3]". */
  abstract describe(): string;
}

/**
 * A float whose value is whole (1.0, 0.0): a plain number would read as an int, and a module
 * written back (an Upsample's scale_factor, a BN's momentum) must keep the type the file had.
 */
export class PyFloat extends PyNative {
  constructor(readonly value: number) {
    super();
  }

  describe(): string {
    return this.value.toFixed(1);
  }
}

/** A float read from a pickle: a number unless it is whole. */
function pyFloat(v: number): number | PyFloat {
  return Number.isInteger(v) ? new PyFloat(v) : v;
}

export type PyValue = null | boolean | number | bigint | string | Uint8Array | PyValue[] | readonly PyValue[] | PyDict | PySet | PyGlobal | PyObject | PyNative;

export type PyTuple = readonly PyValue[];

export function isTuple(v: PyValue | undefined): v is PyTuple {
  return Array.isArray(v) && Object.isFrozen(v);
}

export function isList(v: PyValue | undefined): v is PyValue[] {
  return Array.isArray(v) && !Object.isFrozen(v);
}

/** dict or OrderedDict, insertion-ordered like Python's. */
export class PyDict {
  readonly items = new Map<PyValue, PyValue>();
  /** Instance attributes set by BUILD, e.g. the `_metadata` torch attaches to a state dict. */
  attrs: Map<string, PyValue> | undefined;
  constructor(readonly className = 'dict') {}

  get(key: string): PyValue | undefined {
    return this.items.get(key);
  }
}

export class PySet {
  readonly items = new Set<PyValue>();
  constructor(readonly frozen: boolean) {}
}

export type GlobalCall = (args: PyTuple, kwargs: PyDict | undefined) => PyValue;

/** A class or function named by GLOBAL/STACK_GLOBAL. `call` is set only for allow-listed names. */
export class PyGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
    readonly call?: GlobalCall,
  ) {}

  get qualifiedName(): string {
    return `${this.module}.${this.name}`;
  }
}

/**
 * An instance of a class RepLens does not implement. Construction arguments
 * and BUILD state are recorded as data; no Python method is ever invoked.
 */
export class PyObject {
  /** Argument of BUILD (normally the instance __dict__), undefined if none. */
  state: PyValue | undefined;
  /** SETITEM(S) applied to the instance (dict subclasses). */
  dictItems: Map<PyValue, PyValue> | undefined;
  /** APPEND(S) applied to the instance (list subclasses). */
  listItems: PyValue[] | undefined;

  constructor(
    readonly cls: PyGlobal,
    readonly args: PyTuple,
    readonly kwargs?: PyDict,
    /** 'new' when the file made it with cls.__new__ (NEWOBJ, copyreg._reconstructor), 'call' when it called cls(*args): writing it back needs the same. */
    readonly made: 'call' | 'new' = 'call',
  ) {}

  get className(): string {
    return this.cls.qualifiedName;
  }

  get module(): string {
    return this.cls.module;
  }

  /**
   * The instance __dict__ as Python's default BUILD would leave it: a dict
   * state, or the (state, slotstate) pair pickled for classes with __slots__.
   */
  attributes(): Map<PyValue, PyValue> {
    const s = this.state;
    if (s instanceof PyDict) return s.items;
    if (isTuple(s) && s.length === 2) {
      const merged = new Map<PyValue, PyValue>();
      for (const part of s) if (part instanceof PyDict) for (const [k, v] of part.items) merged.set(k, v);
      return merged;
    }
    return new Map();
  }
}

/** Resolves a global name to a value; undefined means "make a placeholder". */
export type GlobalResolver = (module: string, name: string) => PyValue | undefined;

export interface PickleLimits {
  /** Objects created (containers, strings, placeholders). */
  maxObjects: number;
  /** Items on the stack at once. */
  maxStack: number;
  /** Open MARKs at once. */
  maxMarks: number;
  maxMemo: number;
  /** Bytes of a LONG1/LONG4/text integer. */
  maxIntBytes: number;
}

/**
 * A real checkpoint needs about a dozen objects per tensor (a state dict of 450 tensors: 5,000).
 * Each object costs up to a few hundred bytes and a microsecond, so these keep a hostile
 * pickle to a second or two and a few hundred MB however large the file is.
 */
export const DEFAULT_PICKLE_LIMITS: Readonly<PickleLimits> = {
  maxObjects: 500_000,
  maxStack: 1_000_000,
  maxMarks: 10_000,
  maxMemo: 1_000_000,
  maxIntBytes: 8192,
};

export interface UnpickleOptions {
  /** File name for error messages. */
  file: string;
  /** File offset of data[0], so messages give offsets in the file rather than in a chunk of it. */
  offsetBase?: number;
  /** Handles PERSID/BINPERSID; without it they are an error. */
  persistentLoad?: (pid: PyValue) => PyValue;
  /** Allow-list consulted before the built-in one. */
  resolveGlobal?: GlobalResolver;
  limits?: Partial<PickleLimits>;
}

export interface UnpickleResult {
  value: PyValue;
  /** Offset just past the STOP opcode. */
  end: number;
  /** 'module.name' of every global that resolved to a placeholder, in first-seen order. */
  placeholderGlobals: string[];
}

/** The pickle ran off the end of the given bytes; a reader with more bytes may retry. */
export class PickleEndOfInput extends ModelFormatError {}

const textDecoder = new TextDecoder('utf-8');
const HEX_BYTE = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

function latin1(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 8192) s += String.fromCharCode(...bytes.subarray(i, i + 8192));
  return s;
}

function builtinGlobal(module: string, name: string): PyValue | undefined {
  const qualified = `${module}.${name}`;
  switch (qualified) {
    case 'collections.OrderedDict':
      return new PyGlobal(module, name, (args) => {
        const d = new PyDict('collections.OrderedDict');
        // Protocol 0/1 pickles pass the items as a list of pairs.
        if (args.length > 0 && Array.isArray(args[0])) {
          for (const pair of args[0]) if (Array.isArray(pair) && pair.length === 2) d.items.set(pair[0], pair[1]);
        }
        return d;
      });
    case 'builtins.set':
    case '__builtin__.set':
    case 'builtins.frozenset':
    case '__builtin__.frozenset':
      return new PyGlobal(module, name, (args) => {
        const s = new PySet(name === 'frozenset');
        if (args.length > 0 && Array.isArray(args[0])) for (const v of args[0]) s.items.add(v);
        return s;
      });
    case 'builtins.bytes':
    case '__builtin__.bytes':
    case 'builtins.bytearray':
    case '__builtin__.bytearray':
      // Older protocols spell b'' as bytes() and bytearray(x) as a call on bytes.
      return new PyGlobal(module, name, (args) => {
        if (args.length === 0) return new Uint8Array(0);
        if (args.length === 1 && args[0] instanceof Uint8Array) return args[0].slice();
        return new PyObject(new PyGlobal(module, name), args);
      });
    case '_codecs.encode':
      // How protocol 2 spells bytes: _codecs.encode(text, 'latin1'), one character per byte.
      return new PyGlobal(module, name, (args) => {
        const [text, encoding] = args;
        // Latin-1 is exactly the code points 0-255, control characters included.
        // eslint-disable-next-line no-control-regex
        if (typeof text !== 'string' || (encoding !== 'latin1' && encoding !== 'latin-1') || /[^\x00-\xff]/.test(text)) {
          return new PyObject(new PyGlobal(module, name), args);
        }
        return Uint8Array.from(text, (c) => c.charCodeAt(0));
      });
    case 'copyreg._reconstructor':
    case 'copy_reg._reconstructor':
      // Protocol 0/1 spelling of object.__new__(cls); the state follows via BUILD.
      return new PyGlobal(module, name, (args) => {
        const cls = args[0];
        if (!(cls instanceof PyGlobal)) return new PyObject(new PyGlobal(module, name), args);
        return new PyObject(cls, Object.freeze([]), undefined, 'new');
      });
    default:
      return undefined;
  }
}

const enum Op {
  MARK = 0x28,
  STOP = 0x2e,
  POP = 0x30,
  POP_MARK = 0x31,
  DUP = 0x32,
  FLOAT = 0x46,
  INT = 0x49,
  BININT = 0x4a,
  BININT1 = 0x4b,
  LONG = 0x4c,
  BININT2 = 0x4d,
  NONE = 0x4e,
  PERSID = 0x50,
  BINPERSID = 0x51,
  REDUCE = 0x52,
  STRING = 0x53,
  BINSTRING = 0x54,
  SHORT_BINSTRING = 0x55,
  UNICODE = 0x56,
  BINUNICODE = 0x58,
  APPEND = 0x61,
  BUILD = 0x62,
  GLOBAL = 0x63,
  DICT = 0x64,
  EMPTY_DICT = 0x7d,
  APPENDS = 0x65,
  GET = 0x67,
  BINGET = 0x68,
  INST = 0x69,
  LONG_BINGET = 0x6a,
  LIST = 0x6c,
  EMPTY_LIST = 0x5d,
  OBJ = 0x6f,
  PUT = 0x70,
  BINPUT = 0x71,
  LONG_BINPUT = 0x72,
  SETITEM = 0x73,
  TUPLE = 0x74,
  EMPTY_TUPLE = 0x29,
  SETITEMS = 0x75,
  BINFLOAT = 0x47,
  PROTO = 0x80,
  NEWOBJ = 0x81,
  EXT1 = 0x82,
  EXT2 = 0x83,
  EXT4 = 0x84,
  TUPLE1 = 0x85,
  TUPLE2 = 0x86,
  TUPLE3 = 0x87,
  NEWTRUE = 0x88,
  NEWFALSE = 0x89,
  LONG1 = 0x8a,
  LONG4 = 0x8b,
  BINBYTES = 0x42,
  SHORT_BINBYTES = 0x43,
  SHORT_BINUNICODE = 0x8c,
  BINUNICODE8 = 0x8d,
  BINBYTES8 = 0x8e,
  EMPTY_SET = 0x8f,
  ADDITEMS = 0x90,
  FROZENSET = 0x91,
  NEWOBJ_EX = 0x92,
  STACK_GLOBAL = 0x93,
  MEMOIZE = 0x94,
  FRAME = 0x95,
  BYTEARRAY8 = 0x96,
  NEXT_BUFFER = 0x97,
  READONLY_BUFFER = 0x98,
}

class Unpickler {
  private pos: number;
  private readonly stack: PyValue[] = [];
  /** Stack heights at each open MARK. */
  private readonly marks: number[] = [];
  private readonly memo = new Map<number, PyValue>();
  private objects = 0;
  private readonly limits: PickleLimits;
  private readonly placeholders = new Set<string>();
  private opStart = 0;

  constructor(
    private readonly data: Uint8Array,
    start: number,
    private readonly opts: UnpickleOptions,
  ) {
    this.pos = start;
    this.limits = { ...DEFAULT_PICKLE_LIMITS, ...opts.limits };
  }

  private get at(): number {
    return this.opStart + (this.opts.offsetBase ?? 0);
  }

  private fail(reason: string): never {
    throw new ModelFormatError(this.opts.file, `pickle: ${reason} (opcode at offset ${this.at})`);
  }

  private need(n: number): void {
    if (this.pos + n > this.data.length) {
      throw new PickleEndOfInput(this.opts.file, `pickle truncated: opcode at offset ${this.at} needs ${n} bytes, ${this.data.length - this.pos} left`);
    }
  }

  private byte(): number {
    this.need(1);
    return this.data[this.pos++];
  }

  private bytes(n: number): Uint8Array {
    this.need(n);
    const b = this.data.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  private u16(): number {
    const b = this.bytes(2);
    return b[0] | (b[1] << 8);
  }

  private u32(): number {
    const b = this.bytes(4);
    return (b[0] | (b[1] << 8) | (b[2] << 16) | (b[3] << 24)) >>> 0;
  }

  private i32(): number {
    return this.u32() | 0;
  }

  /** 8-byte length; anything beyond the remaining input is truncation, so it cannot drive an allocation. */
  private len64(): number {
    const lo = this.u32();
    const hi = this.u32();
    const n = hi * 0x100000000 + lo;
    this.need(n);
    return n;
  }

  /** A text line without its '\n' (protocol 0 operands). */
  private line(): string {
    const end = this.data.indexOf(0x0a, this.pos);
    if (end < 0) {
      throw new PickleEndOfInput(this.opts.file, `pickle truncated: no end of line for opcode at offset ${this.at}`);
    }
    const s = latin1(this.data.subarray(this.pos, end));
    this.pos = end + 1;
    return s;
  }

  private count(): void {
    if (++this.objects > this.limits.maxObjects) this.fail(`more than ${this.limits.maxObjects} objects`);
  }

  private push(v: PyValue): void {
    if (this.stack.length >= this.limits.maxStack) this.fail(`stack deeper than ${this.limits.maxStack}`);
    this.stack.push(v);
  }

  private pushNew(v: PyValue): void {
    this.count();
    this.push(v);
  }

  private base(): number {
    return this.marks.length > 0 ? this.marks[this.marks.length - 1] : 0;
  }

  private pop(): PyValue {
    if (this.stack.length <= this.base()) this.fail('stack underflow');
    return this.stack.pop()!;
  }

  private top(): PyValue {
    if (this.stack.length <= this.base()) this.fail('stack underflow');
    return this.stack[this.stack.length - 1];
  }

  private popMark(): PyValue[] {
    const m = this.marks.pop();
    if (m === undefined) this.fail('no MARK to pop to');
    return this.stack.splice(m);
  }

  private intFromText(text: string): number | bigint {
    const t = text.endsWith('L') ? text.slice(0, -1) : text;
    if (t.length > this.limits.maxIntBytes || !/^[+-]?\d+$/.test(t)) this.fail(`bad integer literal '${text.slice(0, 40)}'`);
    const big = BigInt(t);
    return Number.isSafeInteger(Number(big)) ? Number(big) : big;
  }

  /** Little-endian two's complement, as LONG1/LONG4 store integers. */
  private intFromBytes(b: Uint8Array): number | bigint {
    if (b.length === 0) return 0;
    if (b.length <= 6) {
      let v = 0;
      for (let i = b.length - 1; i >= 0; i--) v = v * 256 + b[i];
      return b[b.length - 1] & 0x80 ? v - 2 ** (8 * b.length) : v;
    }
    // Through hex text: shifting a BigInt byte by byte is quadratic in the length.
    let hex = '';
    for (let i = b.length - 1; i >= 0; i--) hex += HEX_BYTE[b[i]];
    let v = BigInt(`0x${hex}`);
    if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
    return Number.isSafeInteger(Number(v)) ? Number(v) : v;
  }

  private memoGet(key: number): PyValue {
    const v = this.memo.get(key);
    if (v === undefined) this.fail(`memo key ${key} was never stored`);
    return v;
  }

  private memoPut(key: number): void {
    if (this.memo.size >= this.limits.maxMemo && !this.memo.has(key)) this.fail(`memo larger than ${this.limits.maxMemo}`);
    this.memo.set(key, this.top());
  }

  private resolve(module: string, name: string): PyValue {
    const v = this.opts.resolveGlobal?.(module, name) ?? builtinGlobal(module, name);
    if (v !== undefined) return v;
    this.placeholders.add(`${module}.${name}`);
    return new PyGlobal(module, name);
  }

  private asTuple(v: PyValue, what: string): PyTuple {
    if (!Array.isArray(v)) this.fail(`${what} must be a tuple, got ${describeType(v)}`);
    return v;
  }

  /** Calling a class or function: allow-listed ones run their TypeScript twin, others become placeholders. */
  private call(callable: PyValue, args: PyTuple, kwargs?: PyDict, made: PyObject['made'] = 'call'): PyValue {
    if (!(callable instanceof PyGlobal)) this.fail(`cannot call ${describeType(callable)}`);
    if (callable.call) return callable.call(args, kwargs);
    return new PyObject(callable, args, kwargs, made);
  }

  private setItems(target: PyValue, items: PyValue[]): void {
    if (items.length % 2 !== 0) this.fail('SETITEMS with an odd number of items');
    let map: Map<PyValue, PyValue>;
    if (target instanceof PyDict) map = target.items;
    else if (target instanceof PyObject) map = target.dictItems ??= new Map();
    else this.fail(`cannot set items on ${describeType(target)}`);
    for (let i = 0; i < items.length; i += 2) map.set(items[i], items[i + 1]);
  }

  private appendItems(target: PyValue, items: PyValue[]): void {
    let list: PyValue[];
    if (isList(target)) list = target;
    else if (target instanceof PyObject) list = target.listItems ??= [];
    else this.fail(`cannot append to ${describeType(target)}`);
    for (const v of items) list.push(v);
  }

  private build(target: PyValue, state: PyValue): void {
    if (target instanceof PyObject) {
      target.state = state;
    } else if (target instanceof PyDict) {
      // A dict subclass instance (OrderedDict with `_metadata`): state is its __dict__.
      const attrs = state instanceof PyDict ? state.items : isTuple(state) && state[0] instanceof PyDict ? state[0].items : undefined;
      if (attrs === undefined) {
        if (state !== null) this.fail(`BUILD on a dict with ${describeType(state)} state`);
        return;
      }
      target.attrs ??= new Map();
      for (const [k, v] of attrs) if (typeof k === 'string') target.attrs.set(k, v);
    } else {
      this.fail(`BUILD on ${describeType(target)}`);
    }
  }

  run(): UnpickleResult {
    for (;;) {
      this.opStart = this.pos;
      const op = this.byte();
      switch (op) {
        case Op.PROTO: {
          const v = this.byte();
          if (v > 5) this.fail(`unsupported pickle protocol ${v}`);
          break;
        }
        case Op.FRAME:
          this.len64();
          break;
        case Op.STOP:
          return { value: this.pop(), end: this.pos, placeholderGlobals: [...this.placeholders] };
        case Op.MARK:
          if (this.marks.length >= this.limits.maxMarks) this.fail(`more than ${this.limits.maxMarks} nested MARKs`);
          this.marks.push(this.stack.length);
          break;
        case Op.POP:
          // Python pops a bare MARK when nothing sits above it.
          if (this.marks.length > 0 && this.stack.length === this.base()) this.marks.pop();
          else this.pop();
          break;
        case Op.POP_MARK:
          this.popMark();
          break;
        case Op.DUP:
          this.push(this.top());
          break;

        case Op.NONE:
          this.push(null);
          break;
        case Op.NEWTRUE:
          this.push(true);
          break;
        case Op.NEWFALSE:
          this.push(false);
          break;
        case Op.INT: {
          const text = this.line();
          // Protocol 0 spells booleans as INT 01 / 00.
          this.push(text === '01' ? true : text === '00' ? false : this.intFromText(text));
          break;
        }
        case Op.LONG:
          this.push(this.intFromText(this.line()));
          break;
        case Op.BININT:
          this.push(this.i32());
          break;
        case Op.BININT1:
          this.push(this.byte());
          break;
        case Op.BININT2:
          this.push(this.u16());
          break;
        case Op.LONG1: {
          const n = this.byte();
          this.push(this.intFromBytes(this.bytes(n)));
          break;
        }
        case Op.LONG4: {
          const n = this.i32();
          if (n < 0) this.fail('negative LONG4 length');
          if (n > this.limits.maxIntBytes) this.fail(`integer of ${n} bytes is too large`);
          this.push(this.intFromBytes(this.bytes(n)));
          break;
        }
        case Op.FLOAT: {
          const text = this.line().trim();
          if (/^[+-]?inf(inity)?$/i.test(text)) this.push(text.startsWith('-') ? -Infinity : Infinity);
          else if (/^[+-]?nan$/i.test(text)) this.push(NaN);
          else if (/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) this.push(pyFloat(Number(text)));
          else this.fail(`bad float literal '${text.slice(0, 40)}'`);
          break;
        }
        case Op.BINFLOAT: {
          const b = this.bytes(8);
          this.push(pyFloat(new DataView(b.buffer, b.byteOffset, 8).getFloat64(0, false)));
          break;
        }

        // Python 2 str: decoded as latin-1 so binary contents survive one-to-one.
        case Op.STRING:
          this.pushNew(latin1(unquote(this.line(), (r) => this.fail(r))));
          break;
        case Op.BINSTRING: {
          const n = this.i32();
          if (n < 0) this.fail('negative BINSTRING length');
          this.pushNew(latin1(this.bytes(n)));
          break;
        }
        case Op.SHORT_BINSTRING:
          this.pushNew(latin1(this.bytes(this.byte())));
          break;
        case Op.BINBYTES:
          this.pushNew(this.bytes(this.u32()).slice());
          break;
        case Op.SHORT_BINBYTES:
          this.pushNew(this.bytes(this.byte()).slice());
          break;
        case Op.BINBYTES8:
        case Op.BYTEARRAY8:
          this.pushNew(this.bytes(this.len64()).slice());
          break;
        case Op.UNICODE:
          this.pushNew(rawUnicodeEscape(this.line()));
          break;
        case Op.BINUNICODE:
          this.pushNew(textDecoder.decode(this.bytes(this.u32())));
          break;
        case Op.SHORT_BINUNICODE:
          this.pushNew(textDecoder.decode(this.bytes(this.byte())));
          break;
        case Op.BINUNICODE8:
          this.pushNew(textDecoder.decode(this.bytes(this.len64())));
          break;

        case Op.EMPTY_TUPLE:
          this.pushNew(Object.freeze([]));
          break;
        case Op.TUPLE1:
          this.pushNew(Object.freeze([this.pop()]));
          break;
        case Op.TUPLE2: {
          const b = this.pop();
          const a = this.pop();
          this.pushNew(Object.freeze([a, b]));
          break;
        }
        case Op.TUPLE3: {
          const c = this.pop();
          const b = this.pop();
          const a = this.pop();
          this.pushNew(Object.freeze([a, b, c]));
          break;
        }
        case Op.TUPLE:
          this.pushNew(Object.freeze(this.popMark()));
          break;
        case Op.EMPTY_LIST:
          this.pushNew([]);
          break;
        case Op.LIST:
          this.pushNew(this.popMark());
          break;
        case Op.APPEND: {
          const v = this.pop();
          this.appendItems(this.top(), [v]);
          break;
        }
        case Op.APPENDS: {
          const items = this.popMark();
          this.appendItems(this.top(), items);
          break;
        }
        case Op.EMPTY_DICT:
          this.pushNew(new PyDict());
          break;
        case Op.DICT: {
          const d = new PyDict();
          this.setItems(d, this.popMark());
          this.pushNew(d);
          break;
        }
        case Op.SETITEM: {
          const v = this.pop();
          const k = this.pop();
          this.setItems(this.top(), [k, v]);
          break;
        }
        case Op.SETITEMS: {
          const items = this.popMark();
          this.setItems(this.top(), items);
          break;
        }
        case Op.EMPTY_SET:
          this.pushNew(new PySet(false));
          break;
        case Op.ADDITEMS: {
          const items = this.popMark();
          const s = this.top();
          if (!(s instanceof PySet) || s.frozen) this.fail(`cannot add items to ${describeType(s)}`);
          for (const v of items) s.items.add(v);
          break;
        }
        case Op.FROZENSET: {
          const s = new PySet(true);
          for (const v of this.popMark()) s.items.add(v);
          this.pushNew(s);
          break;
        }

        case Op.PUT: {
          const text = this.line();
          if (!/^\d{1,10}$/.test(text)) this.fail(`bad memo key '${text.slice(0, 40)}'`);
          this.memoPut(Number(text));
          break;
        }
        case Op.BINPUT:
          this.memoPut(this.byte());
          break;
        case Op.LONG_BINPUT:
          this.memoPut(this.u32());
          break;
        case Op.MEMOIZE:
          this.memoPut(this.memo.size);
          break;
        case Op.GET: {
          const text = this.line();
          if (!/^\d{1,10}$/.test(text)) this.fail(`bad memo key '${text.slice(0, 40)}'`);
          this.push(this.memoGet(Number(text)));
          break;
        }
        case Op.BINGET:
          this.push(this.memoGet(this.byte()));
          break;
        case Op.LONG_BINGET:
          this.push(this.memoGet(this.u32()));
          break;

        case Op.GLOBAL: {
          const module = this.line();
          const name = this.line();
          this.pushNew(this.resolve(module, name));
          break;
        }
        case Op.STACK_GLOBAL: {
          const name = this.pop();
          const module = this.pop();
          if (typeof module !== 'string' || typeof name !== 'string') this.fail('STACK_GLOBAL needs two strings');
          this.pushNew(this.resolve(module, name));
          break;
        }
        case Op.REDUCE: {
          const args = this.asTuple(this.pop(), 'REDUCE arguments');
          const callable = this.pop();
          this.pushNew(this.call(callable, args));
          break;
        }
        case Op.NEWOBJ: {
          const args = this.asTuple(this.pop(), 'NEWOBJ arguments');
          const cls = this.pop();
          this.pushNew(this.call(cls, args, undefined, 'new'));
          break;
        }
        case Op.NEWOBJ_EX: {
          const kwargs = this.pop();
          const args = this.asTuple(this.pop(), 'NEWOBJ_EX arguments');
          const cls = this.pop();
          if (!(kwargs instanceof PyDict)) this.fail('NEWOBJ_EX keyword arguments must be a dict');
          this.pushNew(this.call(cls, args, kwargs, 'new'));
          break;
        }
        case Op.INST: {
          const module = this.line();
          const name = this.line();
          const args = Object.freeze(this.popMark());
          this.pushNew(this.call(this.resolve(module, name), args));
          break;
        }
        case Op.OBJ: {
          const items = this.popMark();
          if (items.length === 0) this.fail('OBJ without a class');
          this.pushNew(this.call(items[0], Object.freeze(items.slice(1))));
          break;
        }
        case Op.BUILD: {
          const state = this.pop();
          this.build(this.top(), state);
          break;
        }
        case Op.PERSID:
          this.pushNew(this.persistent(this.line()));
          break;
        case Op.BINPERSID:
          this.pushNew(this.persistent(this.pop()));
          break;

        case Op.EXT1:
        case Op.EXT2:
        case Op.EXT4:
          return this.fail('extension registry codes (EXT1/EXT2/EXT4) are not supported');
        case Op.NEXT_BUFFER:
        case Op.READONLY_BUFFER:
          return this.fail('out-of-band buffers (protocol 5) are not supported');
        default:
          throw new ModelFormatError(this.opts.file, `unsupported pickle opcode 0x${op.toString(16).padStart(2, '0')} at offset ${this.at}`);
      }
    }
  }

  private persistent(pid: PyValue): PyValue {
    if (!this.opts.persistentLoad) this.fail('persistent id found but this file type does not use them');
    return this.opts.persistentLoad(pid);
  }
}

/** Body of a protocol-0 STRING operand: a quoted Python 2 str literal with backslash escapes. */
function unquote(text: string, fail: (reason: string) => never): Uint8Array {
  const q = text[0];
  if (text.length < 2 || (q !== "'" && q !== '"') || text[text.length - 1] !== q) fail('STRING operand is not quoted');
  const body = text.slice(1, -1);
  const out: number[] = [];
  for (let i = 0; i < body.length; i++) {
    const c = body.charCodeAt(i);
    if (c !== 0x5c) {
      out.push(c & 0xff);
      continue;
    }
    const e = body[++i];
    switch (e) {
      case 'n':
        out.push(10);
        break;
      case 'r':
        out.push(13);
        break;
      case 't':
        out.push(9);
        break;
      case 'a':
        out.push(7);
        break;
      case 'b':
        out.push(8);
        break;
      case 'f':
        out.push(12);
        break;
      case 'v':
        out.push(11);
        break;
      case '\\':
      case "'":
      case '"':
        out.push(e.charCodeAt(0));
        break;
      case 'x': {
        const hex = body.slice(i + 1, i + 3);
        if (!/^[0-9a-fA-F]{2}$/.test(hex)) fail('bad \\x escape in STRING');
        out.push(parseInt(hex, 16));
        i += 2;
        break;
      }
      default: {
        const oct = /^[0-7]{1,3}/.exec(body.slice(i, i + 3));
        if (!oct) fail(`bad escape \\${e ?? ''} in STRING`);
        out.push(parseInt(oct[0], 8) & 0xff);
        i += oct[0].length - 1;
      }
    }
  }
  return Uint8Array.from(out);
}

/** Protocol-0 UNICODE operand: latin-1 text where only \uXXXX and \UXXXXXXXX are escapes. */
function rawUnicodeEscape(text: string): string {
  return text.replace(/\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})/g, (m, u4: string | undefined, u8: string | undefined) => {
    const cp = parseInt(u4 ?? u8 ?? '', 16);
    return cp <= 0x10ffff ? String.fromCodePoint(cp) : m;
  });
}

/** Python-ish type name of a value, for messages. */
export function describeType(v: PyValue | undefined): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'None';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float';
  if (typeof v === 'bigint') return 'int';
  if (typeof v === 'string') return 'str';
  if (v instanceof Uint8Array) return 'bytes';
  if (v instanceof PyDict) return v.className;
  if (v instanceof PySet) return v.frozen ? 'frozenset' : 'set';
  if (v instanceof PyGlobal) return `global ${v.qualifiedName}`;
  if (v instanceof PyObject) return `${v.className} object`;
  if (v instanceof PyFloat) return 'float';
  if (v instanceof PyNative) return v.describe();
  return isTuple(v) ? 'tuple' : 'list';
}

/** Unpickle one pickle starting at `start`; stops at its STOP opcode. */
export function unpickle(data: Uint8Array, start: number, opts: UnpickleOptions): UnpickleResult {
  return new Unpickler(data, start, opts).run();
}
