/** What the first bytes of a file say it is; decided before any reader runs. */
export type DetectedKind = 'torch-zip' | 'torch-legacy' | 'onnx' | 'safetensors' | 'text' | 'unknown';

export const DETECT_BYTES = 64;

/** The safetensors reader's cap on its JSON header (the reference implementation's). */
export const MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024;

/** The magic number torch < 1.6 pickles first, as the protocol-2 LONG1 opcode encodes it. */
const LEGACY_MAGIC = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

function startsWith(head: Uint8Array, prefix: readonly number[]): boolean {
  return prefix.every((b, i) => head[i] === b);
}

function looksLikeText(head: Uint8Array): boolean {
  if (head.length === 0) return false;
  return head.every((b) => b === 0x09 || b === 0x0a || b === 0x0d || (b >= 0x20 && b < 0x7f) || b >= 0x80);
}

/**
 * ONNX has no magic number. A ModelProto starts with ir_version (field 1, varint)
 * in every exporter we know; other leading fields are accepted when a varint or
 * length-delimited field with an ONNX field number follows.
 */
function looksLikeOnnx(head: Uint8Array): boolean {
  if (head.length < 2) return false;
  const tag = head[0];
  const field = tag >> 3;
  const wire = tag & 7;
  if (field === 1 && wire === 0) return head[1] > 0 && head[1] < 0x20;
  // producer_name, producer_version, domain, graph, opset_import, doc_string
  return [2, 3, 4, 6, 7, 8].includes(field) && wire === 2;
}

export function detectKind(head: Uint8Array, fileSize: number): DetectedKind {
  if (startsWith(head, [0x50, 0x4b, 0x03, 0x04]) || startsWith(head, [0x50, 0x4b, 0x05, 0x06])) return 'torch-zip';
  if (startsWith(head, LEGACY_MAGIC)) return 'torch-legacy';
  if (head.length >= 9) {
    // A header longer than the file is still safetensors, cut short: the reader says so. Within the
    // reader's cap the length's high bytes are zero, which no text or ONNX file begins with.
    const headerLen = new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, true);
    if (headerLen > 1n && (headerLen + 8n <= BigInt(fileSize) || headerLen <= BigInt(MAX_SAFETENSORS_HEADER)) && head[8] === 0x7b /* '{' */)
      return 'safetensors';
  }
  if (looksLikeText(head)) return 'text';
  if (looksLikeOnnx(head)) return 'onnx';
  return 'unknown';
}

export function describeKind(kind: DetectedKind): string {
  switch (kind) {
    case 'torch-zip':
      return 'PyTorch checkpoint (zip)';
    case 'torch-legacy':
      return 'PyTorch checkpoint (legacy pickle)';
    case 'onnx':
      return 'ONNX model (protobuf)';
    case 'safetensors':
      return 'safetensors';
    case 'text':
      return 'text file';
    case 'unknown':
      return 'not a model file';
  }
}
