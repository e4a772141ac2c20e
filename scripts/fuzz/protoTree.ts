/*
 * ONNX files as a tree of protobuf fields, so mutations can change one field (a dim,
 * a raw_data length, a node input) and re-encode with every enclosing length right,
 * or deliberately wrong.
 */

export type Kind = 'Model' | 'Graph' | 'Node' | 'Attribute' | 'Tensor' | 'ValueInfo' | 'Type' | 'TensorType' | 'Shape' | 'Dim' | 'Opset' | 'Entry';

/** Which length-delimited fields of each message are messages themselves (field numbers of onnx.proto). */
const CHILDREN: Record<Kind, Record<number, Kind>> = {
  Model: { 7: 'Graph', 8: 'Opset', 14: 'Entry' },
  Graph: { 1: 'Node', 5: 'Tensor', 11: 'ValueInfo', 12: 'ValueInfo', 13: 'ValueInfo' },
  Node: { 5: 'Attribute' },
  Attribute: { 5: 'Tensor', 6: 'Graph', 10: 'Tensor', 11: 'Graph', 14: 'Type', 15: 'Type' },
  Tensor: { 13: 'Entry' },
  ValueInfo: { 2: 'Type' },
  Type: { 1: 'TensorType' },
  TensorType: { 2: 'Shape' },
  Shape: { 1: 'Dim' },
  Dim: {},
  Opset: {},
  Entry: {},
};

export interface PField {
  field: number;
  wire: number;
  /** Varint value (wire 0). */
  varint?: bigint;
  /** Fixed32/64 bytes, or a length-delimited payload that is not decoded as a message. */
  bytes?: Uint8Array;
  /** A decoded embedded message. */
  message?: PMessage;
  /** Encode this field's length as this value instead of the payload's real length. */
  lieLength?: bigint;
}

export interface PMessage {
  kind: Kind;
  fields: PField[];
}

function readVarint(b: Uint8Array, pos: number): { value: bigint; end: number } | undefined {
  let v = 0n;
  for (let i = 0; i < 10; i++) {
    if (pos + i >= b.length) return undefined;
    const byte = b[pos + i];
    v |= BigInt(byte & 0x7f) << BigInt(7 * i);
    if (byte < 0x80) return { value: v, end: pos + i + 1 };
  }
  return undefined;
}

/** Decodes a well-formed message; undefined if the bytes are not one. */
export function decodeMessage(b: Uint8Array, kind: Kind, start = 0, end = b.length, depth = 0): PMessage | undefined {
  const fields: PField[] = [];
  let p = start;
  while (p < end) {
    const tag = readVarint(b, p);
    if (!tag || tag.end > end) return undefined;
    const field = Number(tag.value >> 3n);
    const wire = Number(tag.value & 7n);
    p = tag.end;
    if (wire === 0) {
      const v = readVarint(b, p);
      if (!v || v.end > end) return undefined;
      fields.push({ field, wire, varint: v.value });
      p = v.end;
    } else if (wire === 1 || wire === 5) {
      const n = wire === 1 ? 8 : 4;
      if (p + n > end) return undefined;
      fields.push({ field, wire, bytes: b.subarray(p, p + n) });
      p += n;
    } else if (wire === 2) {
      const len = readVarint(b, p);
      if (!len || len.end + Number(len.value) > end) return undefined;
      const s = len.end;
      const e = s + Number(len.value);
      const child = CHILDREN[kind][field];
      const message = child !== undefined && depth < 64 ? decodeMessage(b, child, s, e, depth + 1) : undefined;
      fields.push(message ? { field, wire, message } : { field, wire, bytes: b.subarray(s, e) });
      p = e;
    } else {
      return undefined;
    }
  }
  return { kind, fields };
}

function varintBytes(v: bigint, out: number[]): void {
  let u = BigInt.asUintN(64, v);
  while (u > 0x7fn) {
    out.push(Number(u & 0x7fn) | 0x80);
    u >>= 7n;
  }
  out.push(Number(u));
}

/** Byte offsets (in the encoded output) where each field starts and ends, for truncation at field boundaries. */
export interface Encoded {
  bytes: Uint8Array;
  boundaries: number[];
}

export function encodeMessage(m: PMessage): Encoded {
  const boundaries: number[] = [];
  const parts: Uint8Array[] = [];
  let length = 0;
  const push = (b: Uint8Array) => {
    parts.push(b);
    length += b.length;
  };
  const encodeInto = (msg: PMessage): void => {
    for (const f of msg.fields) {
      boundaries.push(length);
      const head: number[] = [];
      varintBytes(BigInt(f.field * 8 + f.wire), head);
      if (f.wire === 0) {
        varintBytes(f.varint ?? 0n, head);
        push(Uint8Array.from(head));
      } else if (f.wire === 2) {
        // Encode the payload first to know its length.
        const payload = f.message ? encodeMessage(f.message) : { bytes: f.bytes ?? new Uint8Array(0), boundaries: [] };
        varintBytes(f.lieLength ?? BigInt(payload.bytes.length), head);
        push(Uint8Array.from(head));
        const at = length;
        for (const b of payload.boundaries) boundaries.push(at + b);
        push(payload.bytes);
      } else {
        push(Uint8Array.from(head));
        push(f.bytes ?? new Uint8Array(f.wire === 1 ? 8 : 4));
      }
      boundaries.push(length);
    }
  };
  encodeInto(m);
  const bytes = new Uint8Array(length);
  let o = 0;
  for (const p of parts) {
    bytes.set(p, o);
    o += p.length;
  }
  return { bytes, boundaries: [...new Set(boundaries)].sort((a, b) => a - b) };
}

/** Every field in the tree with the message that holds it, depth first. */
export function allFields(m: PMessage, out: { parent: PMessage; f: PField }[] = []): { parent: PMessage; f: PField }[] {
  for (const f of m.fields) {
    out.push({ parent: m, f });
    if (f.message) allFields(f.message, out);
  }
  return out;
}

export function stringField(field: number, s: string): PField {
  return { field, wire: 2, bytes: new TextEncoder().encode(s) };
}
