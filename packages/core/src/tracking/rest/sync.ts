import { RestTrackingStore } from './rest-store.js';
import { sendPending } from './wal-sender.js';
import { WriteAheadLog } from './write-ahead-log.js';

export interface SyncedLog {
  path: string;
  runId: string;
  uri: string;
  sent: number;
  backlog: number;
  /** Why records are still waiting, when some are. */
  error?: string;
}

/**
 * Sends every write-ahead log in `directory` to the server its header names (`interleave
 * mlflow sync`): each continues from its acknowledged offset, so running it twice sends
 * nothing twice. A log that is fully sent is removed.
 */
export async function syncWriteAheadLogs(directory: string): Promise<SyncedLog[]> {
  const results: SyncedLog[] = [];
  for (const path of await WriteAheadLog.list(directory)) {
    const log = WriteAheadLog.read(path);
    const store = new RestTrackingStore(log.header.uri);
    try {
      const result = await sendPending(log, store);
      if (result.backlog === 0) await log.remove();
      results.push({
        path,
        runId: log.header.runId,
        uri: log.header.uri,
        sent: result.sent,
        backlog: result.backlog,
        ...(result.error ? { error: result.error.message } : {}),
      });
    } finally {
      await store.close();
    }
  }
  return results;
}
