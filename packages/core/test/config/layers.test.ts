import { describe, expect, it } from 'vitest';
import { countLayers, expandLayers } from '../../src/config/layers.js';
import type { LayerEntry, PatternEntry } from '../../src/config/schema.js';

describe('expandLayers', () => {
  it('expands repeat/pattern and keeps each entry source path', () => {
    const layers: Array<LayerEntry | PatternEntry> = [
      { block: 'embed-mixer' },
      { repeat: 2, pattern: [{ block: 'mamba' }, { block: 'swa', window: 4 }] },
    ];
    const expanded = expandLayers(layers);
    expect(expanded.map((layer) => layer.entry.block)).toEqual(['embed-mixer', 'mamba', 'swa', 'mamba', 'swa']);
    expect(expanded.map((layer) => layer.path)).toEqual([
      ['model', 'layers', 0],
      ['model', 'layers', 1, 'pattern', 0],
      ['model', 'layers', 1, 'pattern', 1],
      ['model', 'layers', 1, 'pattern', 0],
      ['model', 'layers', 1, 'pattern', 1],
    ]);
    expect(expanded[2]?.entry).toEqual({ block: 'swa', window: 4 });
  });

  it('expands nested patterns', () => {
    const layers: Array<LayerEntry | PatternEntry> = [
      { repeat: 2, pattern: [{ block: 'a' }, { repeat: 3, pattern: [{ block: 'b' }] }] },
    ];
    const expanded = expandLayers(layers, ['layers']);
    expect(expanded.map((layer) => layer.entry.block).join('')).toBe('abbbabbb');
    expect(expanded[1]?.path).toEqual(['layers', 0, 'pattern', 1, 'pattern', 0]);
    expect(expanded[4]?.path).toEqual(['layers', 0, 'pattern', 0]);
  });

  it('counts layers without expanding, and names the repeat that passes the limit', () => {
    const layers: Array<LayerEntry | PatternEntry> = [
      { block: 'x' },
      { repeat: 1000, pattern: [{ repeat: 1000, pattern: [{ block: 'y' }] }] },
    ];
    expect(countLayers(layers.slice(0, 1))).toEqual({ count: 1 });
    expect(countLayers(layers).overflowAt).toEqual(['model', 'layers', 1, 'repeat']);
  });
});
