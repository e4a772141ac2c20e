import * as path from 'node:path';
import { planDeploy } from '../../../src/core/convert/deployPlan';
import { encodeFromFloat64 } from '../../../src/core/formats/encode';
import { encodeOnnxModel } from '../../../src/core/formats/onnxCodec';
import { openModelFile } from '../../../src/core/formats/openModelFile';
import { fuseOnnxModel } from '../../../src/core/fuse/onnxFusion';
import { buildStructure } from '../../../src/core/model/buildStructure';
import type { ModelStructure } from '../../../src/core/model/structure';
import { writeAtomically } from '../../../src/core/writers/atomicFile';
import type { OutputTensor } from '../../../src/core/writers/outputTensor';
import { writeTorchCheckpoint } from '../../../src/core/writers/torchWriter';

export const MODELS = path.join(__dirname, '..', '..', 'fixtures', 'models');
export const TINY = path.join(MODELS, 'repvgg_tiny_train.pth');

const filled = (t: OutputTensor, value: number) => encodeFromFloat64(t.dtype, new Float64Array(t.shape.reduce((a, b) => a * b, 1)).fill(value));

async function write(dir: string, name: string, tensors: OutputTensor[]): Promise<string> {
  const output = path.join(dir, name);
  await writeAtomically(output, (sink) => writeTorchCheckpoint(sink, tensors), { overwrite: true });
  return output;
}

/**
 * A deploy checkpoint of repvgg_tiny fused from `edit(structure)`: the way to get a wrong fusion
 * on purpose. `poison` sets whole tensors of the result to one value.
 */
export async function wrongDeployFile(dir: string, name: string, edit: (s: ModelStructure) => void, poison: Record<string, number> = {}): Promise<string> {
  const model = await openModelFile(TINY);
  try {
    const structure = structuredClone(buildStructure(model));
    edit(structure);
    const plan = planDeploy(model, structure);
    return await write(
      dir,
      name,
      plan.tensors.map((t) => (t.name in poison ? { ...t, bytes: async () => filled(t, poison[t.name]) } : t)),
    );
  } finally {
    await model.close();
  }
}

/** A copy of the repvgg_tiny train checkpoint with one tensor set to `value` everywhere. */
export async function trainFileWith(dir: string, name: string, tensor: string, value: number): Promise<string> {
  const model = await openModelFile(TINY);
  try {
    return await write(
      dir,
      name,
      model.tensors.map((t) => {
        const out: OutputTensor = { name: t.name, dtype: t.dtype, shape: t.shape, bytes: () => t.readBytes() };
        return t.name === tensor ? { ...out, bytes: async () => filled(out, value) } : out;
      }),
    );
  } finally {
    await model.close();
  }
}

/** `source` (an ONNX model) with its blocks fused in place from `edit(structure)`: a wrong ONNX fusion on purpose. */
export async function wrongFusedOnnx(dir: string, name: string, source: string, edit: (s: ModelStructure) => void): Promise<string> {
  const model = await openModelFile(source);
  try {
    const structure = structuredClone(buildStructure(model));
    edit(structure);
    const bytes = await encodeOnnxModel((await fuseOnnxModel(model, structure)).model);
    const output = path.join(dir, name);
    await writeAtomically(output, (sink) => sink.write(bytes), { overwrite: true });
    return output;
  } finally {
    await model.close();
  }
}
