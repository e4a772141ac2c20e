import { openModelFile } from './formats/openModelFile';
import type { ModelFormat } from './formats/modelFile';
import { buildStructure } from './model/buildStructure';
import type { ModelStructure } from './model/structure';

export interface Inspection {
  format: ModelFormat;
  tensorCount: number;
  structure: ModelStructure;
  /** Reader warnings, e.g. objects in a pickle that RepLens did not execute. */
  fileWarnings: string[];
}

/** Structure of a model file; reads headers and the pickle only, never tensor data. */
export async function inspectFile(path: string): Promise<Inspection> {
  const model = await openModelFile(path);
  try {
    return { format: model.format, tensorCount: model.tensors.length, structure: buildStructure(model), fileWarnings: model.warnings };
  } finally {
    await model.close();
  }
}
