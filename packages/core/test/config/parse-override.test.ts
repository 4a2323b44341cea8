import { describe, expect, it } from 'vitest';
import { parseOverride } from '../../src/config/overrides.js';
import { InterleaveError } from '../../src/errors.js';

describe('parseOverride', () => {
  it('reads the value as YAML', () => {
    expect(parseOverride('train.steps=30').value).toBe(30);
    expect(parseOverride('train.optimizer.lr=1e-3').value).toBe(0.001);
    expect(parseOverride('train.grad_clip=null').value).toBeNull();
    expect(parseOverride('model.tie_embeddings=false').value).toBe(false);
    expect(parseOverride('train.optimizer.betas=[0.8, 0.9]').value).toEqual([0.8, 0.9]);
    expect(parseOverride('task={name: mqar, seq_len: 64}').value).toEqual({ name: 'mqar', seq_len: 64 });
    expect(parseOverride('name=abc').value).toBe('abc');
    expect(parseOverride("name='30'").value).toBe('30');
    expect(parseOverride('name=a=b').value).toBe('a=b');
  });

  it('splits the path on dots, with [n] or numeric segments for list items', () => {
    expect(parseOverride('model.layers[1].window=32').path).toEqual(['model', 'layers', 1, 'window']);
    expect(parseOverride('model.layers.1.window=32').path).toEqual(['model', 'layers', 1, 'window']);
    expect(parseOverride('model.layers[0].pattern[1].mlp=null').path).toEqual([
      'model',
      'layers',
      0,
      'pattern',
      1,
      'mlp',
    ]);
    expect(parseOverride('a[0][2]=1').path).toEqual(['a', 0, 2]);
  });

  it('names a malformed override', () => {
    const cases: Array<[string, string]> = [
      ['train.steps', "invalid override 'train.steps': expected key.path=value"],
      ['=3', "invalid override '=3': the key path before '=' is empty"],
      [
        'train..steps=3',
        "invalid override 'train..steps=3': bad key path 'train..steps' (use names separated by '.', and [n] or .n for list items)",
      ],
      [
        'layers[x]=3',
        "invalid override 'layers[x]=3': bad key path 'layers[x]' (use names separated by '.', and [n] or .n for list items)",
      ],
      ['train.steps=[1, 2', "invalid override 'train.steps=[1, 2': the value is not valid YAML"],
    ];
    for (const [text, message] of cases) {
      let error: unknown;
      try {
        parseOverride(text);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(InterleaveError);
      expect((error as Error).message.startsWith(message)).toBe(true);
    }
  });
});
