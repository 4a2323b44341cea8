/** Config-file fixtures: a valid experiment file, and the generic helpers of core's config tests. */
export { caught, expectOneLine, writeFixtures } from '../../../core/test/config/fixtures.js';

/** A valid config; the line numbers in the tests refer to this text. */
export const VALID_YAML = `name: test
model:
  vocab_size: 64
  d_model: 16
  layers:
    - repeat: 2
      pattern:
        - { block: mamba, d_state: 8 }
        - { block: swa, window: 4, mlp: { expansion: 3 } }
task: { name: mqar, seq_len: 32 }
train:
  steps: 30
  batch_size: 4
  optimizer: { lr: 1.0e-3, betas: [0.9, 0.98] }
`;

/** Replaces one line (1-based) of VALID_YAML. */
export function withLine(line: number, text: string): string {
  const lines = VALID_YAML.split('\n');
  lines[line - 1] = text;
  return lines.join('\n');
}
