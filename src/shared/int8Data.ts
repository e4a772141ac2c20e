/**
 * What the INT8 readiness check finds (core/quant/quantCheck.ts), as the CLI's JSON and the report's
 * INT8 tab show it. Every error is ‖int8 − float‖₂ / ‖float‖₂ at that output of the float deploy form.
 */

export type Int8Cause = 'per-tensor weights' | 'activation range' | 'weights' | 'none';

export interface Int8Block {
  name: string;
  /** Weights int8 per tensor and activations uint8: what static PTQ does by default. */
  int8Error: number;
  /** Weights int8 per tensor, activations float. */
  weightError: number;
  /** Activations uint8, weights float. */
  activationError: number;
  /** The same with weights per output channel. */
  perChannel: { int8Error: number; weightError: number };
  /** The channel whose range sets the per-tensor scale of the block's input, and how many times the median channel's range it is. */
  activationOutlier: { channel: number; ratio: number } | null;
  /** The output channel whose fused kernel sets the per-tensor weight scale, and how many times the median channel's it is. */
  weightOutlier: { channel: number; ratio: number } | null;
  cause: Int8Cause;
  advice: string;
}

export interface Int8Output {
  name: string;
  weights: 'per-tensor' | 'per-channel';
  relError: number;
  maxAbs: number;
  /** As parity measures it: the largest |int8 − float| over |float|, with parity's floor for values near zero. */
  maxRel: number;
  meanAbs: number;
  cosine: number;
  /** For a classifier's logits: the fraction of inputs whose top class is unchanged. */
  top1Agreement: number | null;
}

/** The inputs the model was calibrated and measured on. */
export interface Int8Calibration {
  source: 'random' | 'files';
  method: 'minmax' | 'percentile';
  files: string[];
}

/** What the report's INT8 tab shows. */
export interface Int8Report {
  inputs: number;
  /** [N, C, H, W] of the (first) input. */
  shape: number[];
  calibration: Int8Calibration;
  /** Worst INT8 error first. */
  blocks: Int8Block[];
  outputs: Int8Output[];
}
