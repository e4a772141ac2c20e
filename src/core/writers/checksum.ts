import { promises as fs } from 'node:fs';
import { crc32 } from 'node:zlib';

/** Length and CRC-32 of bytes produced in one piece, taken before they are written. */
export interface ProducedBytes {
  length: number;
  crc32: number;
}

export function producedBytes(bytes: Uint8Array): ProducedBytes {
  return { length: bytes.length, crc32: crc32(bytes) >>> 0 };
}

export const hex = (n: number) => n.toString(16).padStart(8, '0');

const CHUNK = 8 * 1024 * 1024;

/** The file holds exactly the produced bytes: same length, same CRC-32. Throws, saying what differs. */
export async function verifyFileBytes(file: string, produced: ProducedBytes): Promise<void> {
  const handle = await fs.open(file, 'r');
  let crc = 0;
  let length = 0;
  try {
    const chunk = new Uint8Array(Math.min(CHUNK, Math.max(1, produced.length)));
    for (;;) {
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, length);
      if (bytesRead === 0) break;
      crc = crc32(chunk.subarray(0, bytesRead), crc);
      length += bytesRead;
    }
  } finally {
    await handle.close();
  }
  if (length !== produced.length) throw new Error(`it holds ${length} bytes, ${produced.length} were produced`);
  if (crc >>> 0 !== produced.crc32) throw new Error(`its bytes differ from those produced (CRC-32 ${hex(crc >>> 0)}, produced ${hex(produced.crc32)})`);
}
