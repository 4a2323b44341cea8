import { InterleaveError } from '../../errors.js';

/**
 * The server answered with an error: `errorCode` is MLflow's own (`RESOURCE_DOES_NOT_EXIST`,
 * `INVALID_PARAMETER_VALUE`, `RESOURCE_ALREADY_EXISTS`, `UNAUTHENTICATED`, ...), or
 * `HTTP_<status>` when the body was not MLflow's error JSON (a proxy's 503 page).
 */
export class MlflowApiError extends InterleaveError {
  override name = 'MlflowApiError';
  constructor(
    message: string,
    readonly status: number,
    readonly errorCode: string,
  ) {
    super(message);
  }
}

/**
 * No answer: connection refused or dropped, or the time limit passed. `maybeApplied` is true
 * when the request may have reached the server (so a non-idempotent write must be checked
 * before it is sent again).
 */
export class MlflowUnreachableError extends InterleaveError {
  override name = 'MlflowUnreachableError';
  constructor(
    message: string,
    readonly maybeApplied: boolean,
  ) {
    super(message);
  }
}

/** Statuses worth another attempt: the server is overloaded, restarting or briefly failing. */
export function isRetryableStatus(status: number): boolean {
  return status === 429 || status >= 500;
}

/** True for failures that a later attempt may get past (unreachable, 429, 5xx). */
export function isTransient(error: unknown): boolean {
  if (error instanceof MlflowUnreachableError) return true;
  return error instanceof MlflowApiError && isRetryableStatus(error.status);
}
