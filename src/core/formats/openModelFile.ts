import type { BufferPool } from './bufferPool';
import { FileByteSource, type ByteSource } from './byteSource';
import { DETECT_BYTES, detectKind } from './detect';
import { ModelFormatError } from './errors';
import type { ModelFile } from './modelFile';
import { readOnnx } from './onnx';
import { readSafetensors } from './safetensors';
import { readTorchLegacy } from './torchLegacy';
import { readTorchZip } from './torchZip';

const FS_ERRORS: Record<string, string> = {
  ENOENT: 'file not found',
  EACCES: 'permission denied',
  EISDIR: 'is a folder, not a file',
};

/** Any failure while reading becomes a ModelFormatError that names the file. */
function asFormatError(path: string, e: unknown): ModelFormatError {
  if (e instanceof ModelFormatError) return e;
  const code = (e as { code?: string }).code;
  if (code && FS_ERRORS[code]) return new ModelFormatError(path, FS_ERRORS[code]);
  return new ModelFormatError(path, `could not be read: ${e instanceof Error ? e.message : String(e)}`);
}

/** Picks the reader from the first bytes, never from the file name. */
export async function readModel(src: ByteSource): Promise<ModelFile> {
  const head = await src.read(0, Math.min(DETECT_BYTES, src.size));
  switch (detectKind(head, src.size)) {
    case 'torch-zip': return readTorchZip(src);
    case 'torch-legacy': return readTorchLegacy(src);
    case 'safetensors': return readSafetensors(src);
    case 'onnx': return readOnnx(src, src.name);
    case 'text': throw new ModelFormatError(src.name, 'this is a text file, not a model (a .pth file can also be a Python path configuration file)');
    case 'unknown': throw new ModelFormatError(src.name, 'not a model file: the first bytes match no PyTorch, ONNX or safetensors layout');
  }
}

export async function openModelFile(path: string, pool?: BufferPool): Promise<ModelFile> {
  let src: ByteSource | undefined;
  try {
    src = await FileByteSource.open(path, pool);
    return await readModel(src);
  } catch (e) {
    await src?.close();
    throw asFormatError(path, e);
  }
}
