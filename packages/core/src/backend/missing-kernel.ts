import { InterleaveError } from '../errors.js';

const MISSING_KERNEL = /Kernel '([^']+)' not registered for backend '([^']+)'/;

/**
 * Turns tfjs's "Kernel 'X' not registered for backend 'Y'" into a one-line error that says
 * what to do. Blocks should check `BackendCapabilities.hasKernel` and pick another
 * formulation; this is the safety net for code that did not.
 */
export function explainMissingKernel(error: unknown): InterleaveError | undefined {
  const message = error instanceof Error ? error.message : String(error);
  const match = MISSING_KERNEL.exec(message);
  if (!match) return undefined;
  const [, kernel, backend] = match;
  return new InterleaveError(
    `the ${backend} backend has no '${kernel}' kernel, which this model needs; ` +
      `choose another backend (backend: cpu has every kernel) or a block that supports ${backend}`,
  );
}
