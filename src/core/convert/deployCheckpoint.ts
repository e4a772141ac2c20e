import { ModelFormatError } from '../formats/errors';
import type { ModelFile } from '../formats/modelFile';
import { buildStructure } from '../model/buildStructure';
import { allBlocks } from '../model/structure';
import { UnwritableValueError } from '../writers/modulePickle';
import type { OutputTensor, WrittenTensor } from '../writers/outputTensor';
import { writeSafetensors } from '../writers/safetensorsWriter';
import { pickleModuleCheckpoint, writeTorchCheckpoint, type ModuleCheckpoint } from '../writers/torchWriter';
import { verifyTensorFile } from '../writers/verifyOutput';
import { defaultOutputPath, epsSummary, warningLines, type ConvertJob, type ConvertResult } from './conversion';
import { deployModule, NoModuleFormError } from './deployModule';
import { planDeploy, type DeployPlan } from './deployPlan';
import { loadNote } from './loadNote';
import { publishVerified } from './publish';

/** Keys RepLens adds to ModelFile.metadata; the rest are the checkpoint's own entries. */
const READER_KEYS = new Set(['stateDictKey', 'pickleGlobals', 'nonTensorEntries', 'content', 'prefix']);

/** A checkpoint's deploy form as a PyTorch or safetensors file, streamed one block at a time. */
export async function writeDeployCheckpoint({ model, options, before, pool, started }: ConvertJob, format: 'pth' | 'safetensors'): Promise<ConvertResult> {
  const input = model.path;
  const output = options.output ?? defaultOutputPath(input, format);
  const structure = buildStructure(model, options);
  let done = 0;
  const plan = planDeploy(model, structure, {
    ...options,
    pool,
    onBlock: (block) => options.onProgress?.(++done, plan.fused.length, block),
  });
  if (plan.fused.length === 0) {
    throw new ModelFormatError(input, structure.stages.length ? 'every block is already in deploy form' : 'no re-parameterizable blocks found');
  }
  const warnings: string[] = [];
  const asModule = format === 'pth' && !options.stateDict ? moduleForm(model, plan, warnings) : undefined;
  const tensors = asModule?.tensors ?? plan.tensors;
  const { bytesWritten, verifySeconds } = await publishVerified({ input, before, output, force: options.force, signal: options.signal }, async (sink) => {
    const written: WrittenTensor[] =
      format === 'safetensors'
        ? await writeSafetensors(sink, tensors, { format: 'pt', producer: 'RepLens' })
        : await writeTorchCheckpoint(sink, tensors, asModule?.checkpoint);
    return (temp) => verifyTensorFile(temp, format === 'safetensors' ? 'safetensors' : 'torch-zip', written, pool);
  });
  return {
    input,
    output,
    format,
    blocksFused: plan.fused.length,
    blocksAlreadyDeploy: plan.passedThrough.length,
    paramsBefore: structure.params.total,
    paramsAfter: structure.params.afterFusion,
    bytesWritten,
    seconds: (performance.now() - started) / 1000,
    verifySeconds,
    eps: epsSummary(plan.fused, options.eps),
    droppedPrefix: plan.droppedPrefix,
    module: asModule?.module,
    weights: model.weights,
    load: loadNote({
      families: allBlocks(structure).map((b) => b.family),
      architecture: structure.architecture,
      input,
      output,
      format,
      wholeModule: (model.modules?.length ?? 0) > 0,
      module: asModule?.module,
      weightsKey: model.weights?.key,
      otherKeys: model.weights ? Object.keys(model.metadata).filter((k) => !READER_KEYS.has(k)) : undefined,
      droppedPrefix: plan.droppedPrefix,
      tensors: model.tensors,
      modules: model.modules,
    }),
    warnings: [...model.warnings, ...warningLines(structure.warnings), ...warnings],
  };
}

/**
 * A pickled model is written back as one, in deploy form, so the project's own loaders take the
 * output as they take the input; when its objects do not allow that, a state dict, with a warning.
 */
function moduleForm(
  model: ModelFile,
  plan: DeployPlan,
  warnings: string[],
): { tensors: OutputTensor[]; checkpoint: ModuleCheckpoint; module: NonNullable<ConvertResult['module']> } | undefined {
  if (!model.pickled || plan.droppedPrefix !== undefined) return undefined;
  try {
    const deploy = deployModule(model.pickled, plan.fused, plan.tensors);
    return {
      tensors: deploy.tensors,
      checkpoint: pickleModuleCheckpoint(deploy.root, deploy.tensors),
      module: { className: deploy.className, key: deploy.key },
    };
  } catch (e) {
    if (!(e instanceof NoModuleFormError || e instanceof UnwritableValueError)) throw e;
    warnings.push(`written as a state dict, not as the input's pickled model: ${e.message}`);
    return undefined;
  }
}
