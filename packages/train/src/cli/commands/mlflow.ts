import { resolve } from 'node:path';
import {
  copyRuns,
  defaultWalDirectory,
  FileTrackingStore,
  InterleaveError,
  isServerUri,
  openStore,
  syncWriteAheadLogs,
} from '@interleave/core';
import { type Command, parseCommandLine } from '../command.js';

export const mlflowCommand: Command = {
  name: 'mlflow',
  usage: `  mlflow push <file-store-dir> --to <http(s)://server> [--experiment NAME ...]
      copy the runs of a local MLflow file store to a tracking server: params, metric histories,
      tags, status and artifacts, each run tagged with its origin; running it again sends only
      what is missing
  mlflow sync [<dir>]
      send what runs on a tracking server left in their write-ahead logs (the server was down
      when they ended); default dir: $INTERLEAVE_MLFLOW_WAL_DIR or ./.interleave/mlflow-wal`,
  async run(args) {
    const [action, ...rest] = args;
    if (action === 'push') return push(rest);
    if (action === 'sync') return sync(rest);
    throw new InterleaveError(
      `interleave mlflow takes push or sync, not ${action === undefined ? 'nothing' : `'${action}'`}`,
    );
  },
};

async function push(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(args, {
    to: { type: 'string' },
    experiment: { type: 'string', multiple: true },
  });
  if (positionals.length !== 1)
    throw new InterleaveError('mlflow push takes one file store folder: interleave mlflow push ./mlruns --to http://…');
  if (values.to === undefined || !isServerUri(values.to)) {
    throw new InterleaveError('mlflow push needs --to <http(s)://tracking-server>');
  }
  const source = new FileTrackingStore(positionals[0] as string);
  const target = openStore(values.to);
  try {
    const copied = await copyRuns(source, target, {
      originName: `file://${resolve(source.root)}`,
      experiments: values.experiment,
      onRun: (run) =>
        process.stdout.write(
          `${run.experiment}: run ${run.sourceRunId} → ${run.targetRunId} ${run.outcome}` +
            (run.outcome === 'already there'
              ? '\n'
              : ` (${run.metricPoints} metric points, ${run.artifacts} artifacts)\n`),
        ),
    });
    process.stdout.write(`pushed ${copied.length} runs from ${source.root} to ${target.displayUri}\n`);
    return 0;
  } finally {
    await target.close?.();
  }
}

async function sync(args: string[]): Promise<number> {
  const { positionals } = parseCommandLine(args, {});
  if (positionals.length > 1) throw new InterleaveError('mlflow sync takes at most one folder');
  const directory = positionals[0] === undefined ? defaultWalDirectory() : resolve(positionals[0]);
  const synced = await syncWriteAheadLogs(directory);
  let waiting = 0;
  for (const log of synced) {
    process.stdout.write(
      `run ${log.runId} on ${log.uri}: sent ${log.sent} records` +
        (log.backlog > 0 ? `, ${log.backlog} still waiting (${log.error ?? 'server unreachable'})\n` : ', done\n'),
    );
    waiting += log.backlog;
  }
  if (synced.length === 0) process.stdout.write(`nothing to send in ${directory}\n`);
  return waiting > 0 ? 1 : 0;
}
