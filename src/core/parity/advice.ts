import type { ToleranceChoice } from './tolerance';

interface Judged {
  name: string;
  pass: boolean;
  maxRel: number;
  nonFinite: { reference: number; candidate: number };
  error?: string;
}

/** What to do about a FAIL, from what failed: one or two sentences the CLI and the report show under the verdict. */
export function failAdvice(results: readonly Judged[], tolerance: ToleranceChoice, deployFile: string): string {
  const failed = results.filter((r) => !r.pass);
  const nonFinite = failed.find((r) => r.nonFinite.candidate > 0);
  if (nonFinite) {
    return (
      `${deployFile} computes NaN or Inf (${nonFinite.name}): a fused weight or bias does not fit its dtype, or a BN variance is negative. ` +
      'Convert again with --dtype float32; if that file fails too, the train file itself holds the bad values.'
    );
  }
  const broken = failed.find((r) => r.error !== undefined);
  if (broken)
    return `${broken.name} cannot be compared (${broken.error}): ${deployFile} was not converted from this train file, or from other weights of it (--weights).`;
  const worst = failed.reduce((a, b) => (b.maxRel > a.maxRel ? b : a));
  const measured = `worst: ${worst.name}, max rel ${worst.maxRel.toExponential(1)} against rtol ${tolerance.rtol.toExponential(1)}`;
  if (tolerance.dtype) {
    return (
      `The deploy weights are ${tolerance.dtype} (${measured}). Convert again with --dtype float32 and check that file: if it passes, the fusion is ` +
      `right and this is ${tolerance.dtype}'s rounding, larger on this model than the rounding control predicts (--atol/--rtol accept it); if it fails, the fusion is wrong for this model.`
    );
  }
  return (
    `${deployFile} does not compute what the train form does (${measured}). Check that it was converted from this file and these weights (--weights), ` +
    'with the BN eps the model was trained with (--eps: a state dict stores none) and, for a YOLOv6 QARepVGG state dict, the right --qarepvgg.'
  );
}
