import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { FileByteSource } from '../formats/byteSource';
import { messageOf } from '../formats/errors';
import { encodeOnnxModel } from '../formats/onnxCodec';
import type { OnnxModel, OnnxTensor } from '../formats/onnxModel';
import { ExternalDataFile, type InitializerStore } from '../writers/externalData';
import { ParityError } from './errors';

/** A file-system error as a few words. */
function fsReason(e: unknown): string {
  const code = (e as { code?: unknown }).code;
  return code === 'ENOSPC'
    ? 'no space left on the device'
    : code === 'EACCES' || code === 'EPERM' || code === 'EROFS'
      ? 'the folder is not writable'
      : code === 'ENOENT'
        ? 'the folder does not exist'
        : code === 'ENOTDIR'
          ? 'it is not a folder'
          : messageOf(e);
}

/**
 * The models a check runs, as files in a temporary folder: each a small .onnx with its large
 * initializers in external data beside it. ONNX Runtime maps that data instead of copying it out of
 * a message, so a model of hundreds of MB neither passes through the channel to the worker nor
 * exists twice in memory, and its session opens in a fraction of a second. The folder is removed
 * when the check ends, however it ends.
 */
export class WorkFolder {
  private constructor(
    readonly dir: string,
    /** What the check is about, for its errors. */
    private readonly subject: string,
  ) {}

  static async create(subject: string): Promise<WorkFolder> {
    const parent = tmpdir();
    try {
      return new WorkFolder(await fs.mkdtemp(path.join(parent, 'replens-parity-')), subject);
    } catch (e) {
      throw new ParityError(
        subject,
        `could not make a temporary folder in ${parent} for the models ONNX Runtime runs (${fsReason(e)}); set TMPDIR to a writable folder`,
        'io',
      );
    }
  }

  /**
   * Runs `build` with a store that appends initializers to NAME.onnx.data as they are made (so a
   * model is never whole in memory), then writes the model as NAME.onnx; returns its path.
   */
  async build<T extends { model: OnnxModel }>(name: string, build: (store: InitializerStore) => Promise<T>): Promise<T & { path: string }> {
    try {
      const data = await ExternalDataFile.create(path.join(this.dir, `${name}.onnx.data`));
      let built: T;
      try {
        built = await build(data);
      } finally {
        await data.close();
      }
      const file = path.join(this.dir, `${name}.onnx`);
      await fs.writeFile(file, await encodeOnnxModel(built.model));
      return { ...built, path: file };
    } catch (e) {
      // Only the file system's own errors (they carry the call that failed) are about this folder.
      if (!(e instanceof Error && 'syscall' in e)) throw e;
      // A model takes about its file's size here, twice for a check of one file.
      throw new ParityError(
        this.subject,
        `could not write the models ONNX Runtime runs to ${this.dir} (${fsReason(e)}); set TMPDIR to a folder with room for twice the model`,
        'io',
      );
    }
  }

  /** Writes a model that is already in memory (its raw data in memory or in its own file) the same way. */
  async write(name: string, model: OnnxModel): Promise<string> {
    const { path: file } = await this.build(name, async (store) => {
      const initializer: OnnxTensor[] = [];
      for (const t of model.graph?.initializer ?? []) {
        const raw = t.rawData;
        if (raw === undefined) {
          initializer.push(t);
          continue;
        }
        const copy = { ...t };
        await store.place(copy, raw instanceof Uint8Array ? raw : await raw.source.read(raw.offset, raw.length));
        initializer.push(copy);
      }
      return { model: { ...model, graph: model.graph && { ...model.graph, initializer } } };
    });
    return file;
  }

  /** The bytes of an initializer of a model written here. */
  async read(t: OnnxTensor): Promise<Uint8Array> {
    if (t.rawData instanceof Uint8Array) return t.rawData;
    const at = new Map(t.externalData.map((e) => [e.key, e.value]));
    const location = at.get('location');
    if (t.dataLocation !== 1 || location === undefined) throw new Error(`initializer '${t.name}' has no data RepLens wrote`);
    const source = await FileByteSource.open(path.join(this.dir, location));
    try {
      return await source.read(Number(at.get('offset')), Number(at.get('length')));
    } finally {
      await source.close();
    }
  }

  async remove(): Promise<void> {
    await fs.rm(this.dir, { recursive: true, force: true });
  }
}
