import { promises as fs } from 'node:fs';
import { FOLDER } from './byteSource';
import { DETECT_BYTES, detectKind, describeKind, type DetectedKind } from './detect';
import { ModelFormatError } from './errors';
import { asFormatError } from './openModelFile';

export interface FileProbe {
  path: string;
  sizeBytes: number;
  kind: DetectedKind;
  kindLabel: string;
}

/** Reads only the first bytes: enough to tell a checkpoint from a text .pth without parsing anything. */
export async function probeFile(path: string): Promise<FileProbe> {
  try {
    const handle = await fs.open(path, 'r');
    try {
      const stat = await handle.stat();
      if (!stat.isFile()) throw new ModelFormatError(path, stat.isDirectory() ? FOLDER : 'not a regular file');
      const head = new Uint8Array(Math.min(DETECT_BYTES, stat.size));
      await handle.read(head, 0, head.length, 0);
      // A file cut short still begins as what it was: the label says that, and opening it says it is truncated.
      const kind = detectKind(head, stat.size);
      return { path, sizeBytes: stat.size, kind, kindLabel: describeKind(kind) };
    } finally {
      await handle.close();
    }
  } catch (e) {
    // The same words as opening the file would give (file not found, permission denied, …).
    throw asFormatError(path, e);
  }
}
