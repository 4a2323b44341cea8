import { InterleaveError } from '../errors.js';
import { validateKey } from './mlflow-names.js';
import { openStore } from './open-tracker.js';
import { type ExperimentSummary, type MetricPoint, type RunRecord, searchAllRuns } from './store.js';

/** Active experiments of the store at `uri`; an absent file store has none. */
export function listExperiments(uri: string): Promise<ExperimentSummary[]> {
  return openStore(uri).listExperiments();
}

/** Runs of the active experiment named `experimentName`, oldest first; none if it does not exist. */
export async function findRuns(uri: string, experimentName: string): Promise<RunRecord[]> {
  const store = openStore(uri);
  const experiment = await store.getExperimentByName(experimentName);
  return experiment ? searchAllRuns(store, [experiment.experimentId]) : [];
}

/** Runs of experiment `experimentName` that carry tag `key` (with exactly `value`, if given), oldest first. */
export async function findRunsWithTag(
  uri: string,
  experimentName: string,
  key: string,
  value?: string,
): Promise<RunRecord[]> {
  validateKey('tag', key);
  const store = openStore(uri);
  const experiment = await store.getExperimentByName(experimentName);
  return experiment ? searchAllRuns(store, [experiment.experimentId], { tag: { key, value } }) : [];
}

/** Every logged value of metric `key` in run `runId`, in logging order; empty if never logged. */
export function readMetricHistory(uri: string, runId: string, key: string): Promise<MetricPoint[]> {
  validateKey('metric', key);
  return openStore(uri).getMetricHistory(runId, key);
}

/** The active experiment named `name` in the store at `uri`, if there is one. */
export function findExperiment(uri: string, name: string): Promise<ExperimentSummary | undefined> {
  return openStore(uri).getExperimentByName(name);
}

/**
 * The active experiment named `name`; an unknown name is the user's mistake (a typo, the wrong
 * `--uri`), so the error lists the experiments that do exist.
 */
export async function requireExperiment(uri: string, name: string): Promise<ExperimentSummary> {
  const store = openStore(uri);
  const experiment = await store.getExperimentByName(name);
  if (experiment !== undefined) return experiment;
  const names = (await store.listExperiments()).map((candidate) => `'${candidate.name}'`).join(', ');
  throw new InterleaveError(
    `unknown MLflow experiment '${name}' in ${store.displayUri} (${names === '' ? 'the store has no experiments' : `experiments: ${names}`})`,
  );
}
