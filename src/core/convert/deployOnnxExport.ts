import { ModelFormatError } from '../formats/errors';
import { buildGraph, type BuiltGraph } from '../graph/buildGraph';
import { graphStats } from '../graph/stats';
import { buildStructure } from '../model/buildStructure';
import { allBlocks } from '../model/structure';
import { cancelledError } from '../writers/atomicFile';
import { writeOnnxModel } from '../writers/onnxWriter';
import { verifyEncodedFile } from '../writers/verifyOutput';
import { defaultOutputPath, epsSummary, warningLines, type ConvertJob, type ConvertResult } from './conversion';
import { loadNote } from './loadNote';
import { publishVerified } from './publish';

/**
 * A checkpoint's deploy form as an ONNX model (opset 13, float32): the same graph the parity
 * check runs, with batch, height and width left symbolic.
 */
export async function writeDeployOnnxExport({ model, options, before, started }: ConvertJob): Promise<ConvertResult> {
  const input = model.path;
  if (options.dtype !== undefined || options.keepPrefix || options.stateDict) {
    throw new ModelFormatError(input, 'dtype, keep-prefix and state-dict do not apply to an ONNX output: its graph is float32 and names its own tensors');
  }
  const structure = buildStructure(model, options);
  const blocks = allBlocks(structure);
  const train = blocks.filter((b) => b.form === 'train');
  if (train.length === 0) {
    throw new ModelFormatError(input, blocks.length ? 'every block is already in deploy form' : 'no re-parameterizable blocks found');
  }
  const output = options.output ?? defaultOutputPath(input, 'onnx');
  let fused = 0;
  let built: BuiltGraph | undefined;
  const { bytesWritten, verifySeconds } = await publishVerified({ input, before, output, force: options.force, signal: options.signal }, async (sink) => {
    built = await buildGraph(model, structure, {
      form: 'deploy',
      eps: options.eps,
      onBlock: (_done, _total, block) => {
        if (options.signal?.aborted) throw cancelledError(output);
        if (block.form === 'train') options.onProgress?.(++fused, train.length, block);
      },
    });
    const produced = await writeOnnxModel(sink, built.model);
    return (temp) => verifyEncodedFile(temp, 'onnx', produced);
  });
  const graph = built!;
  return {
    input,
    output,
    format: 'onnx',
    blocksFused: train.length,
    blocksAlreadyDeploy: blocks.length - train.length,
    paramsBefore: structure.params.total,
    paramsAfter: graphStats(graph.model.graph!, new Map()).params,
    bytesWritten,
    seconds: (performance.now() - started) / 1000,
    verifySeconds,
    eps: epsSummary(train, options.eps),
    weights: model.weights,
    built: { topology: graph.topology, notes: graph.notes },
    load: loadNote({
      families: train.map((b) => b.family),
      architecture: structure.architecture,
      input,
      output,
      format: 'onnx',
      graphBuilt: true,
      wholeModule: false,
    }),
    warnings: [...model.warnings, ...warningLines(structure.warnings)],
  };
}
