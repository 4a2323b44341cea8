import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parse, stringify } from 'yaml';
import { InterleaveError } from '../errors.js';
import type { RunStatus } from './tracker.js';

/** How MLflow's file store writes `status` in a run's meta.yaml (mlflow.entities.RunStatus). */
export const RUN_STATUS_CODES: Readonly<Record<RunStatus, number>> = {
  RUNNING: 1,
  SCHEDULED: 2,
  FINISHED: 3,
  FAILED: 4,
  KILLED: 5,
};

export function runStatusFromCode(code: unknown): RunStatus {
  // MLflow reads a missing status as RUNNING; so do we.
  if (code === undefined || code === null) return 'RUNNING';
  const found = (Object.keys(RUN_STATUS_CODES) as RunStatus[]).find((status) => RUN_STATUS_CODES[status] === code);
  if (!found) throw new Error(`unknown MLflow run status code ${JSON.stringify(code)}`);
  return found;
}

/** True for URIs the file store handles: plain paths and `file:` URIs. */
export function isFileStoreUri(uri: string): boolean {
  return uri.startsWith('file:') || !/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(uri);
}

/** The store's root folder for `./mlruns`, a relative or absolute path, or `file:///abs`. */
export function resolveFileStoreRoot(uri: string): string {
  if (uri.trim() === '') throw new InterleaveError('MLflow tracking URI is empty');
  if (uri.startsWith('file:')) {
    let path: string;
    try {
      path = fileURLToPath(uri);
    } catch (error) {
      throw new InterleaveError(
        `invalid MLflow tracking URI '${uri}': ${(error as Error).message} (use file:///absolute/path or a plain path)`,
      );
    }
    if (!isAbsolute(path)) throw new InterleaveError(`invalid MLflow tracking URI '${uri}': path is not absolute`);
    return path;
  }
  if (!isFileStoreUri(uri)) throw new InterleaveError(`'${uri}' is not a file store path or file: URI`);
  return resolve(uri);
}

/** `file:///abs/path`, percent-encoded like Python's `pathlib.Path.as_uri()` that MLflow uses. */
export function toFileUri(path: string): string {
  return pathToFileURL(path).href;
}

/**
 * MLflow reads meta.yaml with PyYAML, which speaks YAML 1.1: there `yes`, `on` or `1_000` are
 * not strings. Writing with the 1.1 schema makes the `yaml` package quote such values, and
 * single quotes and sorted keys match what MLflow itself writes.
 */
export function toMetaYaml(data: Record<string, unknown>): string {
  return stringify(data, { version: '1.1', sortMapEntries: true, singleQuote: true, lineWidth: 0 });
}

export function parseMetaYaml(text: string): Record<string, unknown> {
  const parsed: unknown = parse(text, { version: '1.1' });
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new Error('meta.yaml does not hold a mapping');
  }
  return parsed as Record<string, unknown>;
}

export interface MetricPoint {
  timestamp: number;
  value: number;
  step: number;
}

/** One line of a `metrics/<key>` file: `<timestamp_ms> <value> <step>`. */
export function formatMetricLine(point: MetricPoint): string {
  return `${point.timestamp} ${formatMetricValue(point.value)} ${point.step}\n`;
}

/**
 * Python's `float()` parses what this writes. Non-finite values use Python's own spelling
 * (what MLflow writes), and -0 keeps its sign, which `String(-0)` would drop.
 */
export function formatMetricValue(value: number): string {
  if (Number.isNaN(value)) return 'nan';
  if (value === Number.POSITIVE_INFINITY) return 'inf';
  if (value === Number.NEGATIVE_INFINITY) return '-inf';
  if (Object.is(value, -0)) return '-0.0';
  return String(value);
}

/** Reads a metric line the way MLflow does: 2, 3 or 5 fields, step 0 when absent. */
export function parseMetricLine(line: string): MetricPoint {
  const fields = line.trim().split(' ');
  if (fields.length !== 2 && fields.length !== 3 && fields.length !== 5) {
    throw new Error(`malformed MLflow metric line ${JSON.stringify(line)}`);
  }
  const [timestamp, value, step] = fields as [string, string, string | undefined];
  return { timestamp: Number(timestamp), value: parsePythonFloat(value), step: step === undefined ? 0 : Number(step) };
}

function parsePythonFloat(text: string): number {
  const lower = text.toLowerCase().replace(/^\+/, '');
  if (lower === 'nan' || lower === '-nan') return Number.NaN;
  if (lower === 'inf' || lower === 'infinity') return Number.POSITIVE_INFINITY;
  if (lower === '-inf' || lower === '-infinity') return Number.NEGATIVE_INFINITY;
  const value = Number(text.replaceAll('_', ''));
  if (Number.isNaN(value) || text.trim() === '') throw new Error(`malformed MLflow metric value '${text}'`);
  return value;
}
