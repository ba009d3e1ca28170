// Deterministic pseudo-random data (xorshift32): synthetic weights, autotune inputs, test data.
// Reproducible across runs and platforms, independent of Math.random.

function xorshift(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

/** Uniform values in [-scale, scale). */
export function seeded(n: number, seed: number, scale = 1): Float32Array {
  const next = xorshift(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = ((next() / 0x100000000) * 2 - 1) * scale;
  return out;
}

/** Normal values N(mean, std^2) (Box-Muller). */
export function seededGaussian(n: number, seed: number, mean = 0, std = 1): Float32Array {
  const next = xorshift(seed);
  const uniform = () => (next() + 0.5) / 4294967296;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = mean + std * Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
  return out;
}
