import type { BufferPool } from './bufferPool';
import { FileByteSource, FOLDER, type ByteSource } from './byteSource';
import { DETECT_BYTES, detectKind } from './detect';
import { messageOf, ModelFormatError } from './errors';
import type { ModelFile } from './modelFile';
import { readOnnx } from './onnx';
import { readSafetensors } from './safetensors';
import { readTorchLegacy } from './torchLegacy';
import { readTorchZip } from './torchZip';
import { WeightsSlotError, type UnwrapOptions } from './unwrap';

export interface OpenOptions extends UnwrapOptions {
  /** The pool reads land in (see BufferPool). */
  pool?: BufferPool;
}

const FS_ERRORS: Record<string, string> = {
  ENOENT: 'file not found',
  EACCES: 'permission denied: RepLens may not read this file',
  EPERM: 'permission denied: RepLens may not read this file',
  EISDIR: FOLDER,
};

/** Any failure while reading becomes a ModelFormatError that names the file. */
export function asFormatError(path: string, e: unknown): ModelFormatError {
  if (e instanceof ModelFormatError) return e;
  if (e instanceof WeightsSlotError) return new ModelFormatError(path, e.message);
  const code = (e as { code?: string }).code;
  if (code && FS_ERRORS[code]) return new ModelFormatError(path, FS_ERRORS[code]);
  return new ModelFormatError(path, `the file could not be read: ${messageOf(e)}`);
}

/** Picks the reader from the first bytes, never from the file name. */
export async function readModel(src: ByteSource, options: UnwrapOptions = {}): Promise<ModelFile> {
  // A failed download or copy often leaves an empty file; say that rather than that it matches no format.
  if (src.size === 0) throw new ModelFormatError(src.name, 'the file is empty (0 bytes); re-save or re-download it');
  const head = await src.read(0, Math.min(DETECT_BYTES, src.size));
  const kind = detectKind(head, src.size);
  if (options.weights !== undefined && (kind === 'safetensors' || kind === 'onnx')) {
    throw new ModelFormatError(
      src.name,
      `has no weights under '${options.weights}': ${kind === 'onnx' ? 'an ONNX model' : 'a safetensors file'} holds one set of weights, with no checkpoint keys to choose from`,
    );
  }
  switch (kind) {
    case 'torch-zip':
      return readTorchZip(src, options);
    case 'torch-legacy':
      return readTorchLegacy(src, options);
    case 'safetensors':
      return readSafetensors(src);
    case 'onnx':
      return readOnnx(src, src.name);
    case 'text':
      throw new ModelFormatError(src.name, 'this is a text file, not a model (a .pth file can also be a Python path configuration file)');
    case 'unknown':
      throw new ModelFormatError(src.name, 'not a model file: the first bytes match no PyTorch, ONNX or safetensors layout');
  }
}

export async function openModelFile(path: string, options: OpenOptions = {}): Promise<ModelFile> {
  let src: ByteSource | undefined;
  try {
    src = await FileByteSource.open(path, options.pool);
    return await readModel(src, options);
  } catch (e) {
    await src?.close();
    throw asFormatError(path, e);
  }
}
