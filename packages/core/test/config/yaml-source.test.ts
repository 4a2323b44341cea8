import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/config-error.js';
import { parseYaml } from '../../src/config/yaml-source.js';

const TEXT = `a: 1
b:
  c: [10, 20]
  d:
    - x: 1
    - { y: 2 }
  e:
anchor: &base { k: 1 }
alias: *base
`;

describe('parseYaml', () => {
  it('gives plain data', () => {
    const source = parseYaml(TEXT, 'f.yaml');
    expect(source.value).toEqual({
      a: 1,
      b: { c: [10, 20], d: [{ x: 1 }, { y: 2 }], e: null },
      anchor: { k: 1 },
      alias: { k: 1 },
    });
  });

  it('locates values, keys, list items, empty values and missing paths', () => {
    const source = parseYaml(TEXT, 'f.yaml');
    const at = (line: number, column: number) => ({ file: 'f.yaml', line, column });
    expect(source.locate(['a'])).toEqual(at(1, 4));
    expect(source.locate(['a'], 'key')).toEqual(at(1, 1));
    expect(source.locate(['b', 'c', 1])).toEqual(at(3, 11));
    expect(source.locate(['b', 'd', 0, 'x'])).toEqual(at(5, 10));
    expect(source.locate(['b', 'd', '1', 'y'])).toEqual(at(6, 12));
    expect(source.locate(['b', 'd', 1])).toEqual(at(6, 7));
    expect(source.locate(['b', 'e'])).toEqual(at(7, 3));
    expect(source.locate(['b'])).toEqual(at(2, 1));
    expect(source.locate(['b', 'missing', 'deeper'])).toEqual(at(2, 1));
    expect(source.locate(['b', 'c', 5])).toEqual(at(3, 6));
    expect(source.locate([])).toEqual(at(1, 1));
    expect(source.locate(['alias', 'k'])).toEqual(at(8, 20));
    expect(source.existingDepth(['b', 'd', 0, 'nope'])).toBe(3);
  });

  it('turns syntax errors into ConfigErrors with line and column', () => {
    let error: unknown;
    try {
      parseYaml('a: 1\nb: {c: 1\n', 'f.yaml');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toBe("f.yaml:2:4: b: YAML syntax error: '{' is never closed with '}'");
    expect((error as ConfigError).location).toEqual({ file: 'f.yaml', line: 2, column: 4 });
    expect((error as ConfigError).keyPath).toEqual(['b']);
  });

  it('rejects duplicate keys at any depth, in its own words', () => {
    expect(() => parseYaml('a:\n  - { k: 1, k: 2 }\n', 'f.yaml')).toThrow(
      "f.yaml:2:13: a[0].k: duplicate key 'k' (first defined at line 2:7)",
    );
  });

  it('has no position for an empty file', () => {
    const source = parseYaml('', 'f.yaml');
    expect(source.value).toBeNull();
    expect(source.locate(['a'])).toEqual({ file: 'f.yaml' });
  });
});
