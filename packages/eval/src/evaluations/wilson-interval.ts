/** The normal quantile of a two-sided 95% interval. */
const Z_95 = 1.959963984540054;

/**
 * Wilson's score interval for a binomial proportion (`successes` of `trials`): unlike the
 * normal approximation p ± z·√(p(1−p)/n), it stays inside [0, 1] and keeps its coverage at
 * accuracies of 0 or 1, which is where extrapolation results sit. 95% by default.
 */
export function wilsonInterval(successes: number, trials: number, z = Z_95): { low: number; high: number } {
  if (!Number.isInteger(trials) || trials < 1 || successes < 0 || successes > trials) {
    throw new RangeError(`wilsonInterval needs 0 ≤ successes ≤ trials and trials ≥ 1, got ${successes} of ${trials}`);
  }
  const p = successes / trials;
  const z2 = z * z;
  const denominator = 1 + z2 / trials;
  const centre = (p + z2 / (2 * trials)) / denominator;
  const halfWidth = (z * Math.sqrt((p * (1 - p)) / trials + z2 / (4 * trials * trials))) / denominator;
  return { low: Math.max(0, centre - halfWidth), high: Math.min(1, centre + halfWidth) };
}
