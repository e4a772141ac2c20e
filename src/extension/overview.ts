import * as path from 'node:path';
import { inspectFile } from '../core/inspect';
import { probeFile } from '../core/formats/probe';
import type { FileOverview, StructureSummary } from '../shared/protocol';
import type { Inspection } from '../core/inspect';
import { readErrorText } from './messages';

function summarize({ structure: s, tensorCount, weights, fileWarnings }: Inspection): StructureSummary {
  return {
    ...(weights ? { weights: { key: weights.key, reason: weights.reason, slots: weights.slots.map((slot) => slot.key) } } : {}),
    family: s.family,
    architecture: s.architecture,
    form: s.form,
    tensors: tensorCount,
    paramsTotal: s.params.total,
    paramsAfterFusion: s.params.afterFusion,
    stages: s.stages.map((stage) => {
      const forms = new Set(stage.blocks.map((b) => b.form));
      return {
        name: stage.name,
        blocks: stage.blocks.length,
        inChannels: stage.blocks[0].inChannels,
        outChannels: stage.blocks.at(-1)!.outChannels,
        form: forms.size === 1 ? [...forms][0] : 'mixed',
        warnings: stage.blocks.reduce((n, b) => n + b.warnings.length, 0),
      };
    }),
    warnings: [...fileWarnings, ...s.warnings.map((w) => (w.block ? `${w.block}: ${w.message}` : w.message))],
  };
}

/** What the model editor shows: the recognised format always, the structure when the file reads as a model. */
export async function fileOverview(file: string, weights?: string): Promise<FileOverview> {
  const probe = await probeFile(file);
  const overview: FileOverview = { fileName: path.basename(file), sizeBytes: probe.sizeBytes, kind: probe.kind, kindLabel: probe.kindLabel };
  if (probe.kind === 'text' || probe.kind === 'unknown') return overview;
  try {
    overview.structure = summarize(await inspectFile(file, { weights }));
  } catch (e) {
    overview.readError = readErrorText(file, e);
  }
  return overview;
}
