import * as path from 'node:path';

/**
 * The file names RepLens opens as models, longest first so that `.pth.tar` wins over `.tar`. The
 * extension's manifest repeats them where it cannot import code (the editor's selectors and the
 * menus' conditions in package.json); a test keeps the two the same.
 */
export const MODEL_SUFFIXES = ['.pth.tar', '.pth', '.pt', '.ckpt', '.safetensors', '.onnx'] as const;

/**
 * A file name as stem and model suffix (`.pth.tar` whole). `.bin` (Hugging Face's
 * pytorch_model.bin) counts as a suffix here, for naming an output beside such a file;
 * any other name splits at its last dot.
 */
export function splitModelName(file: string): { stem: string; suffix: string } {
  const base = path.basename(file);
  const suffix = [...MODEL_SUFFIXES, '.bin'].find((s) => base.toLowerCase().endsWith(s)) ?? path.extname(base);
  return { stem: base.slice(0, base.length - suffix.length), suffix };
}
