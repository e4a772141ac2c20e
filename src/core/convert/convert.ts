import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { ModelFormatError } from '../formats/errors';
import { openModelFile } from '../formats/openModelFile';
import { buildStructure } from '../model/buildStructure';
import type { Block } from '../model/structure';
import { writeAtomically } from '../writers/atomicFile';
import { writeSafetensors } from '../writers/safetensorsWriter';
import { writeTorchCheckpoint } from '../writers/torchWriter';
import { planDeploy, type PlanOptions } from './deployPlan';

export type OutputFormat = 'pth' | 'safetensors';

export interface ConvertOptions extends Omit<PlanOptions, 'onBlock'> {
  output?: string;
  format?: OutputFormat;
  /** Replace an existing output. */
  force?: boolean;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number, block: Block) => void;
}

export interface ConvertResult {
  input: string;
  output: string;
  format: OutputFormat;
  blocksFused: number;
  blocksAlreadyDeploy: number;
  paramsBefore: number;
  paramsAfter: number;
  bytesWritten: number;
  seconds: number;
  /** BN eps values used, with where they came from. */
  eps: { value: number; source: string; blocks: number }[];
  droppedPrefix?: string;
  warnings: string[];
}

const MODEL_SUFFIXES = ['.pth.tar', '.pth', '.pt', '.ckpt', '.safetensors', '.onnx', '.bin'];

/** The output format when none is asked for: safetensors stays safetensors, everything else becomes a PyTorch checkpoint. */
export function sameFormatAs(inputFormat: string): OutputFormat {
  return inputFormat === 'safetensors' ? 'safetensors' : 'pth';
}

export const DEFAULT_OUTPUT_NAME = '{stem}.deploy{ext}';

/**
 * The output path beside the input, from a name template with `{stem}` and `{ext}`
 * (default `<stem>.deploy<ext>`); the extension follows the output format.
 */
export function defaultOutputPath(input: string, format: OutputFormat, template = DEFAULT_OUTPUT_NAME): string {
  const base = path.basename(input);
  const suffix = MODEL_SUFFIXES.find((s) => base.toLowerCase().endsWith(s)) ?? path.extname(base);
  const stem = base.slice(0, base.length - suffix.length);
  const ext = format === 'safetensors' ? '.safetensors' : suffix === '.safetensors' || suffix === '.onnx' ? '.pth' : suffix;
  const name = template.replaceAll('{stem}', stem).replaceAll('{ext}', ext);
  if (name === '' || name.includes('/') || name.includes('\\')) throw new Error(`output name template '${template}' must give a file name`);
  return path.join(path.dirname(input), name);
}

function epsSummary(blocks: readonly Block[], override?: number): ConvertResult['eps'] {
  const counts = new Map<string, { value: number; source: string; blocks: Set<string> }>();
  for (const b of blocks) {
    for (const branch of b.branches) {
      if (!branch.bn) continue;
      const value = override ?? branch.bn.eps;
      const source = override !== undefined ? 'override' : branch.bn.epsSource === 'attribute' ? 'stored in the file' : `${b.family} default`;
      const key = `${value}|${source}`;
      if (!counts.has(key)) counts.set(key, { value, source, blocks: new Set() });
      counts.get(key)!.blocks.add(b.name);
    }
  }
  return [...counts.values()].map((c) => ({ value: c.value, source: c.source, blocks: c.blocks.size }));
}

/** Reads a train-form model file and writes its deploy form, one block at a time. */
export async function convertFile(input: string, options: ConvertOptions = {}): Promise<ConvertResult> {
  const started = performance.now();
  const before = await fs.stat(input).catch(() => undefined);
  const model = await openModelFile(input);
  try {
    if (model.format === 'onnx') {
      throw new ModelFormatError(input, 'converting ONNX models is not supported yet; convert the PyTorch or safetensors checkpoint instead');
    }
    const format = options.format ?? sameFormatAs(model.format);
    const output = options.output ?? defaultOutputPath(input, format);
    const structure = buildStructure(model);
    let done = 0;
    const plan = planDeploy(model, structure, {
      ...options,
      onBlock: (block) => options.onProgress?.(++done, plan.fused.length, block),
    });
    if (plan.fused.length === 0) {
      throw new ModelFormatError(input, structure.stages.length ? 'every block is already in deploy form' : 'no re-parameterizable blocks found');
    }
    const bytesWritten = await writeAtomically(
      output,
      async (sink) => {
        if (format === 'safetensors') await writeSafetensors(sink, plan.tensors, { format: 'pt', producer: 'RepLens' });
        else await writeTorchCheckpoint(sink, plan.tensors);
        // The input must not have changed while we read it, or the output mixes two versions.
        const after = await fs.stat(input);
        if (before && (after.size !== before.size || after.mtimeMs !== before.mtimeMs)) {
          throw new ModelFormatError(input, 'the file changed while it was being converted; nothing was written');
        }
      },
      { overwrite: options.force, protect: [input], signal: options.signal },
    );
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
      eps: epsSummary(plan.fused, options.eps),
      droppedPrefix: plan.droppedPrefix,
      warnings: [...model.warnings, ...structure.warnings.map((w) => (w.block ? `${w.block}: ${w.message}` : w.message))],
    };
  } finally {
    await model.close();
  }
}
