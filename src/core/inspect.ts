import { openModelFile } from './formats/openModelFile';
import type { ModelFormat, WeightsChoice } from './formats/modelFile';
import { buildStructure, type StructureOptions } from './model/buildStructure';
import type { ModelStructure } from './model/structure';

export interface Inspection {
  format: ModelFormat;
  tensorCount: number;
  structure: ModelStructure;
  /** Which of a training checkpoint's weights were read, and why. */
  weights?: WeightsChoice;
  /** Reader warnings, e.g. objects in a pickle that RepLens did not execute. */
  fileWarnings: string[];
}

/** Structure of a model file; reads headers and the pickle only, never tensor data. */
export async function inspectFile(path: string, options: { weights?: string } & StructureOptions = {}): Promise<Inspection> {
  const model = await openModelFile(path, options);
  try {
    return {
      format: model.format,
      tensorCount: model.tensors.length,
      structure: buildStructure(model, options),
      weights: model.weights,
      fileWarnings: model.warnings,
    };
  } finally {
    await model.close();
  }
}
