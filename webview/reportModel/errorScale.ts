/**
 * The error overlay's discrete scale. A block's maxRel is compared with the relative
 * tolerance the parity check used, which follows the deploy weights' dtype, so "green" means
 * the same thing for fp32 and fp16 runs: as close as that dtype's rounding allows. A correct
 * conversion is green; yellow and orange say a block uses a good part of the tolerance. The
 * block's own pass/fail verdict (which also weighs atol) decides 'fail'.
 */
import type { BlockParity } from '../../src/shared/reportData';

export type ErrorLevel = 'easy' | 'pass' | 'near' | 'fail' | 'none';

export interface ErrorLevelInfo {
  level: ErrorLevel;
  label: string;
}

/** Legend order, best to worst, then blocks without numbers. CSS classes `rl-err-<level>` carry the colours. */
export const ERROR_LEVELS: readonly ErrorLevelInfo[] = [
  { level: 'easy', label: 'as exact as rounding allows (max rel < 10% of rtol)' },
  { level: 'pass', label: 'passes (10–50% of rtol)' },
  { level: 'near', label: 'passes, near the tolerance (≥ 50% of rtol)' },
  { level: 'fail', label: 'fails' },
  { level: 'none', label: 'no parity numbers' },
];

const EASY = 0.1;
const COMFORTABLE = 0.5;

export function errorLevel(parity: BlockParity | undefined, rtol: number): ErrorLevel {
  if (!parity) return 'none';
  if (!parity.pass) return 'fail';
  const ratio = rtol > 0 ? parity.maxRel / rtol : parity.maxRel === 0 ? 0 : Infinity;
  if (ratio < EASY) return 'easy';
  if (ratio < COMFORTABLE) return 'pass';
  // Also NaN: a passing verdict with an unreadable maxRel is shown as close, not as easy.
  return 'near';
}

const SEVERITY: Record<ErrorLevel, number> = { none: -1, easy: 0, pass: 1, near: 2, fail: 3 };

/** The worst of several levels, e.g. for a collapsed stage box; 'none' only when nothing has numbers. */
export function worstLevel(levels: Iterable<ErrorLevel>): ErrorLevel {
  let worst: ErrorLevel = 'none';
  for (const l of levels) if (SEVERITY[l] > SEVERITY[worst]) worst = l;
  return worst;
}
