import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { trainFromConfig } from '../src/run/train-run.js';

const CONFIGS = resolve(import.meta.dirname, '../../../configs');

// The README's demo, at full length: the hybrid must learn MQAR, not just run.
describe('the demo config', () => {
  it('trains configs/mqar-hybrid.yaml to at least 0.9 MQAR test accuracy', async () => {
    const uri = mkdtempSync(join(tmpdir(), 'interleave-demo-'));
    const lines: string[] = [];
    const result = await trainFromConfig({
      configFile: join(CONFIGS, 'mqar-hybrid.yaml'),
      overrides: [`tracking.uri=${uri}`],
      output: { write: (text: string) => lines.push(text), isTTY: false },
    });
    expect(result.status).toBe('FINISHED');
    expect(result.finalEval.accuracy, lines.join('')).toBeGreaterThanOrEqual(0.9);
  });
});
