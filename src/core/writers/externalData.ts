import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { OnnxTensor } from '../formats/onnxModel';
import { ByteSink } from './atomicFile';

/**
 * Where a graph's initializer bytes go as it is built: into the model itself (raw_data), or out of
 * it. A store may keep `bytes` in the model (IN_MODEL always, ExternalDataFile for small ones), so
 * the caller hands over arrays it never writes to again.
 */
export interface InitializerStore {
  place(tensor: OnnxTensor, bytes: Uint8Array): Promise<void>;
}

export const IN_MODEL: InitializerStore = {
  async place(tensor, bytes) {
    tensor.rawData = bytes;
  },
};

/** For a graph that is only looked at (the report's): no bytes are kept, each tensor keeps its name and shape. */
export const SHAPES_ONLY: InitializerStore = {
  async place() {},
};

/** Cache-line alignment: every float type's elements are aligned wherever the file is mapped. */
const ALIGN = 64;
/** Smaller initializers (BN statistics, biases) stay in the model: one read each would cost more than their bytes. */
const SMALL_BYTES = 4096;

/**
 * ONNX external data: the large initializers of one model appended to a file beside it, each at an
 * aligned offset, the tensor holding its location (relative to the model's folder), offset and
 * length. ONNX Runtime maps such a file into memory instead of copying the tensors out of the model,
 * which is what lets a model of hundreds of MB open in a fraction of a second.
 */
export class ExternalDataFile implements InitializerStore {
  private constructor(
    private readonly handle: fs.FileHandle,
    private readonly sink: ByteSink,
    /** The file's name, as the model refers to it. */
    readonly location: string,
  ) {}

  /** Creates (or empties) `file`; a model saved in the same folder refers to it by its base name. */
  static async create(file: string): Promise<ExternalDataFile> {
    const handle = await fs.open(file, 'w');
    return new ExternalDataFile(handle, new ByteSink(handle), path.basename(file));
  }

  async place(tensor: OnnxTensor, bytes: Uint8Array): Promise<void> {
    if (bytes.length < SMALL_BYTES) {
      tensor.rawData = bytes;
      return;
    }
    const padding = (ALIGN - (this.sink.position % ALIGN)) % ALIGN;
    if (padding > 0) await this.sink.write(new Uint8Array(padding));
    const offset = this.sink.position;
    await this.sink.write(bytes);
    tensor.rawData = undefined;
    tensor.dataLocation = 1;
    tensor.externalData = [
      { key: 'location', value: this.location },
      { key: 'offset', value: String(offset) },
      { key: 'length', value: String(bytes.length) },
    ];
  }

  async close(): Promise<void> {
    try {
      await this.sink.flush();
    } finally {
      await this.handle.close();
    }
  }
}
