export * from './config-error.js';
export { canonicalJson, configHash, flattenForParams, truncateParam } from './flatten.js';
export { countLayers, type ExpandedLayer, expandLayers, isPatternEntry, MAX_LAYERS } from './layers.js';
export { type ConfigSource, configDataSource, type LoadedConfig, loadConfig } from './load-config.js';
export { applyOverride, type Override, overrideLocation, parseOverride } from './overrides.js';
export * from './schema.js';
export { type LocationPart, parseYaml, readYamlFile, type YamlSource } from './yaml-source.js';
