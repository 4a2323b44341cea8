import type { ResolvedLayer } from './resolve-layers.js';

/**
 * The MLflow tag `interleave.architecture`: the block names in layer order, consecutive
 * repeats kept, joined by `+` (`mamba+swa`, `attention+attention`). Reports and fits group
 * runs by it; it reads the resolved layers, so plugin blocks get their names in too.
 */
export function architectureName(layers: readonly Pick<ResolvedLayer, 'block'>[]): string {
  return layers.map((layer) => layer.block.name).join('+');
}
