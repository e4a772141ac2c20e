import type { OnnxModel } from '../formats/onnxModel';
import { encodeOnnxModel } from '../formats/onnxCodec';
import type { ByteSink } from './atomicFile';
import { producedBytes, type ProducedBytes } from './checksum';

/** An ONNX model, encoded in one piece. Returns the length and checksum of what was produced, for the read-back check. */
export async function writeOnnxModel(sink: ByteSink, model: OnnxModel): Promise<ProducedBytes> {
  const bytes = await encodeOnnxModel(model);
  const produced = producedBytes(bytes);
  await sink.write(bytes);
  return produced;
}
