import { describe, expect, it } from 'vitest';
import { ConfigError, displayText, formatKeyPath } from '../../src/config/config-error.js';
import { MAX_NESTING, parseYaml } from '../../src/config/yaml-source.js';

/** The message parseYaml throws for `text` (which must fail). */
function rejection(text: string): string {
  try {
    parseYaml(text, 'f.yaml');
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).message;
  }
  throw new Error('expected parseYaml to reject the text');
}

describe('hostile YAML', () => {
  it('refuses a billion-laughs alias bomb at the first alias, with its key path', () => {
    let bomb = 'name: x\nl0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n';
    for (let level = 1; level <= 9; level++) {
      bomb += `l${level}: &l${level} [${Array.from({ length: 10 }, () => `*l${level - 1}`).join(', ')}]\n`;
    }
    expect(rejection(bomb)).toBe(
      'f.yaml:3:10: l1[0]: YAML aliases expand to more than 100 copies (an alias bomb?); write the values out',
    );
  });

  it('keeps ordinary anchors and aliases', () => {
    expect(parseYaml('a: &x {k: 1}\nb: *x\n', 'f.yaml').value).toEqual({ a: { k: 1 }, b: { k: 1 } });
  });

  it('names an alias whose anchor comes later', () => {
    expect(rejection('a: *later\nb: &later 1\n')).toBe(
      "f.yaml:1:4: a: YAML alias '*later' has no anchor '&later' before it",
    );
  });

  it('refuses flow and block nesting deeper than the limit, however deep, without exhausting the stack', () => {
    const flow = `name: x\nn: ${'['.repeat(50_000)}1${']'.repeat(50_000)}\n`;
    expect(rejection(flow)).toMatch(
      new RegExp(
        `^f\\.yaml:2:${3 + MAX_NESTING}: n\\[0\\]\\[0\\].*\\(\\d+ more\\).*: the YAML nests deeper than 64 levels`,
      ),
    );
    let block = 'name: x\nn:\n';
    for (let depth = 1; depth <= 5_000; depth++) block += `${' '.repeat(depth)}k${depth}:\n`;
    block += 'after: 1\n';
    expect(rejection(block)).toMatch(/^f\.yaml:\d+:1: .*the YAML nests deeper than 64 levels/);
  });

  it('shows control characters escaped and long keys cut, so the message stays one line', () => {
    const key = `bad\nkey\u202e${'x'.repeat(500)}`;
    const message = rejection(`name: x\n${JSON.stringify(key)}: 1\n${JSON.stringify(key)}: 2\n`);
    expect(message.split('\n')).toHaveLength(1);
    expect(message).toMatch(/^f\.yaml:3:1: bad\\nkey\\u202exxx.*\.\.\.: duplicate key 'bad\\nkey\\u202exxx/);
    expect(message.length).toBeLessThan(400);
    expect(displayText('a\u0000b')).toBe('a\\u0000b');
    expect(formatKeyPath(Array.from({ length: 20 }, (_, index) => `k${index}`))).toBe(
      'k0.k1.k2.k3.k4.k5...(8 more).k14.k15.k16.k17.k18.k19',
    );
  });
});
