import { BufferPool } from '../formats/bufferPool';
import { stampOf } from '../formats/fileStamp';
import { openModelFile } from '../formats/openModelFile';
import { cancelledError } from '../writers/atomicFile';
import { sameFormatAs, type ConvertOptions, type ConvertResult } from './conversion';
import { writeDeployCheckpoint } from './deployCheckpoint';
import { writeDeployOnnxExport } from './deployOnnxExport';
import { writeDeployOnnxGraph } from './deployOnnxGraph';

export { DEFAULT_OUTPUT_NAME, defaultOutputPath, sameFormatAs, type ConvertOptions, type ConvertResult, type OutputFormat } from './conversion';

/**
 * Reads a train-form model file and writes its deploy form: the one entry point of every
 * conversion. The input is opened once and its content (not its name) decides the route: an
 * ONNX model is fused inside its own graph; a checkpoint becomes a PyTorch or safetensors file,
 * or, with format 'onnx', the ONNX graph RepLens builds for it. Every route publishes through
 * publishVerified: written beside the target, read back and checked, then moved into place.
 */
export async function convertFile(input: string, options: ConvertOptions = {}): Promise<ConvertResult> {
  const started = performance.now();
  // The output's name needs the format, which needs the file: until then a cancellation names the input.
  if (options.signal?.aborted) throw cancelledError(options.output ?? input);
  const before = await stampOf(input);
  const pool = new BufferPool();
  const model = await openModelFile(input, { pool, weights: options.weights });
  try {
    const job = { model, options, before, pool, started };
    if (model.format === 'onnx') return await writeDeployOnnxGraph(job);
    const format = options.format ?? sameFormatAs(model.format);
    return format === 'onnx' ? await writeDeployOnnxExport(job) : await writeDeployCheckpoint(job, format);
  } finally {
    await model.close();
  }
}
