/**
 * Seeded standard-normal samples: mulberry32 for uniforms, Box–Muller for the normal pairs.
 * The same seed gives the same inputs on every machine, so a failing check can be rerun.
 */
/** mulberry32: seeded 32-bit unsigned integers. */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

export class NormalRandom {
  private readonly bits: () => number;
  private spare: number | undefined;

  constructor(seed: number) {
    this.bits = mulberry32(seed);
  }

  /** Uniform in (0, 1): never 0, so the logarithm below stays finite. */
  private uniform(): number {
    return (this.bits() + 0.5) / 4294967296;
  }

  next(): number {
    if (this.spare !== undefined) {
      const s = this.spare;
      this.spare = undefined;
      return s;
    }
    const r = Math.sqrt(-2 * Math.log(this.uniform()));
    const theta = 2 * Math.PI * this.uniform();
    this.spare = r * Math.sin(theta);
    return r * Math.cos(theta);
  }

  fill(n: number): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.next();
    return out;
  }
}
