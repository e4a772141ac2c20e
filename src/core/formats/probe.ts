import { promises as fs } from 'node:fs';
import { DETECT_BYTES, detectKind, describeKind, type DetectedKind } from './detect';

export interface FileProbe {
  path: string;
  sizeBytes: number;
  kind: DetectedKind;
  kindLabel: string;
}

/** Reads only the first bytes: enough to tell a checkpoint from a text .pth without parsing anything. */
export async function probeFile(path: string): Promise<FileProbe> {
  const handle = await fs.open(path, 'r');
  try {
    const { size } = await handle.stat();
    const head = new Uint8Array(Math.min(DETECT_BYTES, size));
    await handle.read(head, 0, head.length, 0);
    const kind = detectKind(head, size);
    return { path, sizeBytes: size, kind, kindLabel: describeKind(kind) };
  } finally {
    await handle.close();
  }
}
