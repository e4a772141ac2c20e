import { describe, expect, it } from 'vitest';
import { ERROR_LEVELS, errorLevel, worstLevel } from '../../../webview/reportModel/errorScale';

const parity = (maxRel: number, pass = true) => ({ maxAbs: maxRel, maxRel, cosine: 1, pass });

describe('error overlay scale', () => {
  it('buckets passing blocks by maxRel relative to rtol', () => {
    expect(errorLevel(parity(5e-7), 1e-4)).toBe('easy');
    // A correct float32 conversion's blocks (max rel 1e-5 to 1e-4 against rtol 1e-3) are green.
    expect(errorLevel(parity(9.9e-5), 1e-3)).toBe('easy');
    expect(errorLevel(parity(1.01e-5), 1e-4)).toBe('pass');
    expect(errorLevel(parity(4.9e-5), 1e-4)).toBe('pass');
    expect(errorLevel(parity(5e-5), 1e-4)).toBe('near');
    // Passing through atol although maxRel is above rtol: still a pass, shown as close.
    expect(errorLevel(parity(3e-4), 1e-4)).toBe('near');
  });

  it('lets the verdict decide failure, whatever maxRel says', () => {
    expect(errorLevel(parity(1e-9, false), 1e-4)).toBe('fail');
  });

  it('has a level for blocks without numbers and for odd values', () => {
    expect(errorLevel(undefined, 1e-4)).toBe('none');
    expect(errorLevel(parity(NaN), 1e-4)).toBe('near');
    expect(errorLevel(parity(0), 0)).toBe('easy');
    expect(errorLevel(parity(1e-9), 0)).toBe('near');
  });

  it('picks the worst level, ignoring blocks without numbers', () => {
    expect(worstLevel(['easy', 'near', 'pass'])).toBe('near');
    expect(worstLevel(['none', 'easy'])).toBe('easy');
    expect(worstLevel(['pass', 'fail', 'none'])).toBe('fail');
    expect(worstLevel([])).toBe('none');
  });

  it('lists every level once in the legend', () => {
    expect(ERROR_LEVELS.map((l) => l.level)).toEqual(['easy', 'pass', 'near', 'fail', 'none']);
  });
});
