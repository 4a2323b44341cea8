import { generateBlockJob } from '../sections/generate.js';
import { peerReferenceJob } from '../sections/peer.js';
import { compareScanJob } from '../sections/scan.js';
import { compareStepModeJob } from '../sections/step-mode.js';
import { compareSwaJob } from '../sections/swa.js';
import { trainModelJob } from '../sections/train.js';
import type { Job } from './job.js';

/** Every job a child process can run, by name. */
export const JOBS = {
  'scan.compare': compareScanJob,
  'train.model': trainModelJob,
  'swa.compare': compareSwaJob,
  'generate.block': generateBlockJob,
  'peer.reference': peerReferenceJob,
  'step-mode.compare': compareStepModeJob,
} satisfies Record<string, Job<never>>;

export type JobName = keyof typeof JOBS;
