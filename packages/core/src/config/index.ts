export * from './config-error.js';
export { canonicalJson, configHash, flattenForParams, truncateParam } from './flatten.js';
export { countLayers, type ExpandedLayer, expandLayers, isPatternEntry, MAX_LAYERS } from './layers.js';
export {
  type ConfigFiles,
  type ConfigSource,
  configDataSource,
  configFromText,
  type LoadedConfig,
  loadConfig,
  readConfigFiles,
  resolveConfig,
} from './load-config.js';
export { applyOverride, type Override, overrideLocation, parseOverride } from './overrides.js';
export * from './schema.js';
export { type LocationPart, parseYaml, readYamlFile, type YamlSource } from './yaml-source.js';
