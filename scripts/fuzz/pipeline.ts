import { planDeploy } from '../../src/core/convert/deployPlan';
import { MemoryByteSource } from '../../src/core/formats/byteSource';
import { ModelFormatError } from '../../src/core/formats/errors';
import type { ModelFile } from '../../src/core/formats/modelFile';
import { encodeOnnxModel } from '../../src/core/formats/onnxCodec';
import { readModel } from '../../src/core/formats/openModelFile';
import { FusionError } from '../../src/core/fuse/fuseBlock';
import { fuseOnnxModel } from '../../src/core/fuse/onnxFusion';
import { buildStructure } from '../../src/core/model/buildStructure';
import { inWriteOrder } from '../../src/core/writers/outputTensor';

/*
 * What RepLens does with a file a user opens and converts, minus writing the output:
 * read it, build its structure, read every tensor, and produce every tensor of the
 * deploy form (for ONNX, the rewritten graph). It must end in a result, a
 * ModelFormatError or a FusionError.
 */

export type Stage = 'read' | 'structure' | 'tensors' | 'convert' | 'close';

export interface Outcome {
  /** result: the pipeline finished; error: a ModelFormatError or FusionError; crash: anything else. */
  kind: 'result' | 'error' | 'crash';
  stage: Stage;
  /** Constructor name of what was thrown. */
  errorClass?: string;
  message?: string;
  /** Where a crash was thrown: the first frames of its stack. */
  where?: string;
  tensors: number;
  fused: number;
  warnings: string[];
  pickleGlobals: string[];
}

function describeThrown(e: unknown): { errorClass: string; message: string; where?: string } {
  if (e instanceof Error) {
    const frames = (e.stack ?? '')
      .split('\n')
      .filter((l) => l.trimStart().startsWith('at '))
      .slice(0, 4)
      .map((l) => l.trim());
    return { errorClass: e.constructor.name, message: e.message, where: frames.join(' | ') };
  }
  return { errorClass: typeof e, message: String(e) };
}

export function isCleanError(e: unknown): boolean {
  return e instanceof ModelFormatError || e instanceof FusionError;
}

/** Runs the pipeline over `bytes`, read as if from `path` (ONNX external data resolves beside it). */
export async function runPipeline(bytes: Uint8Array, path: string): Promise<Outcome> {
  let stage: Stage = 'read';
  let model: ModelFile | undefined;
  let fused = 0;
  try {
    model = await readModel(new MemoryByteSource(path, bytes));
    stage = 'structure';
    const structure = buildStructure(model);
    stage = 'tensors';
    for (const t of model.tensors) await t.readBytes();
    stage = 'convert';
    if (model.format === 'onnx') {
      // ONNX models are converted by rewriting the graph (convertFile, and the report), then re-encoded.
      const fusion = await fuseOnnxModel(model, structure);
      await encodeOnnxModel(fusion.model);
      fused = fusion.fused.length;
    } else {
      const plan = planDeploy(model, structure);
      for await (const _ of inWriteOrder(plan.tensors));
      fused = plan.fused.length;
    }
    stage = 'close';
    await model.close();
    return outcome('result', stage, model, fused);
  } catch (e) {
    return { ...outcome(isCleanError(e) ? 'error' : 'crash', stage, model, fused), ...describeThrown(e) };
  }
}

function outcome(kind: Outcome['kind'], stage: Stage, model: ModelFile | undefined, fused: number): Outcome {
  const globals = model?.metadata.pickleGlobals;
  return {
    kind,
    stage,
    tensors: model?.tensors.length ?? 0,
    fused,
    warnings: model?.warnings ?? [],
    pickleGlobals: Array.isArray(globals) ? globals.map(String) : [],
  };
}
