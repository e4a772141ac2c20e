/**
 * Element-wise comparison of a candidate output against a reference output, accumulated
 * over every input sample.
 *
 * - scale is the RMS of the reference output (per sample), at least 1. Float32 rounding in a
 *   conv grows with the size of the values it sums, not with the size of one result, so an
 *   absolute tolerance has to grow with the output's scale: deep layers of a network with large
 *   activations otherwise fail on rounding noise alone (PyTorch's own fused model does).
 * - An element passes when |candidate − reference| <= atol·scale + rtol·|reference|; for outputs
 *   of RMS <= 1 this is numpy.allclose.
 * - maxRel is max |candidate − reference| / max(|reference|, atol·scale/rtol): below that floor,
 *   where the absolute tolerance is the larger one, elements are measured against the floor so
 *   near-zero reference values do not blow the ratio up. maxRel <= rtol implies a pass.
 * - A NaN or ±Inf in either output fails the comparison, whatever the other side holds, and
 *   makes maxAbs, maxRel, meanAbs and cosine NaN (null in JSON).
 */

import type { Verdict } from '../../shared/reportData';

export interface Tolerance {
  atol: number;
  rtol: number;
}

export interface Metrics extends Verdict {
  /** Fraction of rows with the same argmax, for 2-D [batch, classes] outputs; null otherwise. */
  top1Agreement: number | null;
  elements: number;
  /** Elements outside atol·scale + rtol·|reference|. */
  mismatched: number;
  /** ‖candidate − reference‖₂ / ‖reference‖₂ over every element: the size of the error against the size of the signal. */
  relError: number;
}

function argmax(data: Float32Array, start: number, n: number): number {
  let best = start;
  for (let i = start + 1; i < start + n; i++) if (data[i] > data[best]) best = i;
  return best - start;
}

export class Comparison {
  private elements = 0;
  private sumAbs = 0;
  private maxAbs = 0;
  private maxRel = 0;
  private dot = 0;
  private normRef = 0;
  private normCand = 0;
  private sumSquaredDiff = 0;
  private mismatched = 0;
  private nonFiniteRef = 0;
  private nonFiniteCand = 0;
  private rows = 0;
  private agreeing = 0;
  private classifier = true;
  private scale = 1;
  private error: string | undefined;

  constructor(private readonly tolerance: Tolerance) {}

  private static rms(values: Float32Array): number {
    let sum = 0;
    let n = 0;
    for (const v of values) {
      if (!Number.isFinite(v)) continue;
      sum += v * v;
      n++;
    }
    return n > 0 ? Math.sqrt(sum / n) : 0;
  }

  add(reference: Float32Array, candidate: Float32Array, referenceDims: readonly number[], candidateDims: readonly number[]): void {
    if (referenceDims.join() !== candidateDims.join() || reference.length !== candidate.length) {
      this.error ??= `shapes differ: reference [${referenceDims.join(', ')}], candidate [${candidateDims.join(', ')}]`;
      return;
    }
    const scale = Math.max(1, Comparison.rms(reference));
    this.scale = Math.max(this.scale, scale);
    const atol = this.tolerance.atol * scale;
    const rtol = this.tolerance.rtol;
    const floor = Math.max(rtol > 0 ? atol / rtol : atol, Number.MIN_VALUE);
    for (let i = 0; i < reference.length; i++) {
      const b = reference[i];
      const a = candidate[i];
      const finiteB = Number.isFinite(b);
      const finiteA = Number.isFinite(a);
      if (!finiteB || !finiteA) {
        if (!finiteB) this.nonFiniteRef++;
        if (!finiteA) this.nonFiniteCand++;
        this.mismatched++;
        continue;
      }
      const d = Math.abs(a - b);
      const mag = Math.abs(b);
      if (d > atol + rtol * mag) this.mismatched++;
      if (d > this.maxAbs) this.maxAbs = d;
      const rel = d / Math.max(mag, floor);
      if (rel > this.maxRel) this.maxRel = rel;
      this.sumAbs += d;
      this.dot += a * b;
      this.normRef += b * b;
      this.normCand += a * a;
      this.sumSquaredDiff += (a - b) * (a - b);
    }
    this.elements += reference.length;

    this.classifier &&= referenceDims.length === 2 && referenceDims[1] > 1;
    if (this.classifier) {
      const [batch, classes] = referenceDims;
      for (let r = 0; r < batch; r++) {
        this.rows++;
        if (argmax(reference, r * classes, classes) === argmax(candidate, r * classes, classes)) this.agreeing++;
      }
    }
  }

  result(): Metrics {
    const nonFinite = { reference: this.nonFiniteRef, candidate: this.nonFiniteCand };
    const broken = this.error !== undefined || nonFinite.reference + nonFinite.candidate > 0 || this.elements === 0;
    const norms = Math.sqrt(this.normRef) * Math.sqrt(this.normCand);
    const cosine = norms > 0 ? this.dot / norms : this.normRef === this.normCand ? 1 : 0;
    return {
      maxAbs: broken ? NaN : this.maxAbs,
      maxRel: broken ? NaN : this.maxRel,
      meanAbs: broken ? NaN : this.sumAbs / this.elements,
      cosine: broken ? NaN : cosine,
      // Argmax over NaN is meaningless, so agreement is only reported for finite outputs.
      top1Agreement: this.classifier && this.rows > 0 && !broken ? this.agreeing / this.rows : null,
      pass: !broken && this.mismatched === 0,
      elements: this.elements,
      mismatched: this.mismatched,
      relError: broken ? NaN : this.normRef > 0 ? Math.sqrt(this.sumSquaredDiff / this.normRef) : this.sumSquaredDiff > 0 ? Infinity : 0,
      scale: this.scale,
      nonFinite,
      ...(this.error !== undefined ? { error: this.error } : {}),
    };
  }
}
