import { ModelFormatError } from '../formats/errors';
import { fuseOnnxModel, onnxBlockOutputs, type OnnxFusion } from '../fuse/onnxFusion';
import { buildStructure } from '../model/buildStructure';
import { allBlocks } from '../model/structure';
import { cancelledError } from '../writers/atomicFile';
import { writeOnnxModel } from '../writers/onnxWriter';
import { verifyEncodedFile } from '../writers/verifyOutput';
import { defaultOutputPath, epsSummary, warningLines, type ConvertJob, type ConvertResult } from './conversion';
import { loadNote } from './loadNote';
import { publishVerified } from './publish';

/** An ONNX model's deploy form: each block fused inside its own graph, written as ONNX with external data inlined. */
export async function writeDeployOnnxGraph({ model, options, before, started }: ConvertJob): Promise<ConvertResult> {
  const input = model.path;
  if (options.format !== undefined && options.format !== 'onnx') {
    throw new ModelFormatError(input, `an ONNX model is converted to ONNX, not ${options.format}; convert the PyTorch or safetensors checkpoint for that`);
  }
  if (options.dtype !== undefined) {
    throw new ModelFormatError(input, "an ONNX model keeps its tensor types: new weights of another type would not match the graph's activations");
  }
  const output = options.output ?? defaultOutputPath(input, 'onnx');
  const structure = buildStructure(model, options);
  const trainBlocks = allBlocks(structure).filter((b) => b.form === 'train');
  const total = trainBlocks.filter((b) => b.onnx?.fusible).length;
  if (total === 0) {
    const reason = trainBlocks.length
      ? 'no block can be fused exactly (see the warnings of `inspect`)'
      : structure.stages.length
        ? 'every block is already in deploy form'
        : 'no re-parameterizable blocks found';
    throw new ModelFormatError(input, reason);
  }
  let done = 0;
  let fusion: OnnxFusion | undefined;
  const { bytesWritten, verifySeconds } = await publishVerified({ input, before, output, force: options.force, signal: options.signal }, async (sink) => {
    fusion = await fuseOnnxModel(model, structure, {
      eps: options.eps,
      onBlock: (block) => {
        if (options.signal?.aborted) throw cancelledError(output);
        options.onProgress?.(++done, total, block);
      },
    });
    const produced = await writeOnnxModel(sink, fusion.model);
    return (temp) => verifyEncodedFile(temp, 'onnx', produced);
  });
  const f = fusion!;
  const saved = f.fused.reduce((n, b) => n + b.params.train - b.params.deploy, 0);
  return {
    input,
    output,
    format: 'onnx',
    blocksFused: f.fused.length,
    blocksAlreadyDeploy: f.alreadyDeploy.length,
    paramsBefore: structure.params.total,
    paramsAfter: structure.params.total - saved,
    bytesWritten,
    seconds: (performance.now() - started) / 1000,
    verifySeconds,
    eps: epsSummary(f.fused, options.eps),
    graph: { nodes: f.nodes, initializers: f.initializers, blockOutputs: onnxBlockOutputs(structure) },
    load: loadNote({ families: f.fused.map((b) => b.family), architecture: structure.architecture, input, output, format: 'onnx', wholeModule: false }),
    warnings: [
      ...model.warnings,
      ...f.skipped.map((s) => `${s.block.name}: left unfused: ${s.reason}`),
      ...warningLines(structure.warnings.filter((w) => !f.skipped.some((s) => s.block.name === w.block))),
    ],
  };
}
