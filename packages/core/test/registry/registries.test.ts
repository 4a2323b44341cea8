import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { configDataSource } from '../../src/config/load-config.js';
import { InterleaveError } from '../../src/errors.js';
import { applyPlugin, createContainer, REGISTRIES } from '../../src/registry/container.js';
import { NamedRegistry } from '../../src/registry/named-registry.js';
import { defineRegistry, registryOf } from '../../src/registry/registry-key.js';
import { resolveByName } from '../../src/registry/resolve-by-name.js';

/**
 * A registry kind core has never heard of, declared the way a later package declares its own
 * (tokenizers, data stores): a definition type with a name and a schema for its config keys.
 */
interface VocabularyDefinition {
  readonly name: string;
  readonly schema: z.ZodType<{ size: number }>;
}
const VOCABULARIES = defineRegistry<VocabularyDefinition>('vocabulary', {
  check: (definition) => {
    if (definition.name !== definition.name.toLowerCase()) {
      throw new InterleaveError(`vocabulary '${definition.name}': names are lower case`);
    }
  },
});
const bytes: VocabularyDefinition = { name: 'bytes', schema: z.strictObject({ size: z.literal(256) }) };
const words: VocabularyDefinition = { name: 'words', schema: z.strictObject({ size: z.number().int().min(2) }) };

describe('registries in the container', () => {
  it('starts with empty block, task and evaluation registries, one per container', () => {
    const container = createContainer();
    const blocks = registryOf(container, REGISTRIES.blocks);
    expect(blocks.names()).toEqual([]);
    expect(registryOf(container, REGISTRIES.blocks)).toBe(blocks);
    expect(container.get(REGISTRIES.tasks.token)).toBe(registryOf(container, REGISTRIES.tasks));
    expect(registryOf(createContainer(), REGISTRIES.blocks)).not.toBe(blocks);
  });

  it('lets a plugin register into a registry declared outside core, bound on first use', async () => {
    const container = createContainer();
    expect(container.isBound(VOCABULARIES.token)).toBe(false);
    await applyPlugin(container, (api) => {
      api.register(VOCABULARIES, bytes);
      api.register(VOCABULARIES, words);
    });
    expect(container.isBound(VOCABULARIES.token)).toBe(true);
    expect(registryOf(container, VOCABULARIES).names()).toEqual(['bytes', 'words']);
    expect(registryOf(container, VOCABULARIES).get('words')).toBe(words);
  });

  it('runs the registry check on registration and on replacement', async () => {
    const container = createContainer();
    const shouting: VocabularyDefinition = { ...bytes, name: 'BYTES' };
    await expect(applyPlugin(container, (api) => api.register(VOCABULARIES, shouting))).rejects.toThrow(
      "vocabulary 'BYTES': names are lower case",
    );
    await applyPlugin(container, (api) => api.register(VOCABULARIES, bytes));
    await expect(applyPlugin(container, (api) => api.replace(VOCABULARIES, shouting))).rejects.toThrow(
      'names are lower case',
    );
  });

  it('refuses a second registration under one name but lets a plugin replace an entry explicitly', async () => {
    const container = createContainer();
    await applyPlugin(container, (api) => api.register(VOCABULARIES, words));
    const widened: VocabularyDefinition = { name: 'words', schema: z.strictObject({ size: z.number().int().min(1) }) };
    await expect(applyPlugin(container, (api) => api.register(VOCABULARIES, widened))).rejects.toThrow(
      "vocabulary 'words' is registered twice",
    );
    await applyPlugin(container, (api) => api.replace(VOCABULARIES, widened));
    expect(registryOf(container, VOCABULARIES).get('words')).toBe(widened);
    await expect(
      applyPlugin(container, (api) => api.replace(VOCABULARIES, { ...bytes, name: 'glyphs' })),
    ).rejects.toThrow("cannot replace vocabulary 'glyphs': it is not registered (registered: words)");
  });

  it('uses whatever registry a test binds in its place (container.rebind)', async () => {
    const container = createContainer();
    await applyPlugin(container, (api) => api.register(VOCABULARIES, bytes));
    const replacement = new NamedRegistry<VocabularyDefinition>('vocabulary');
    replacement.register(words);
    container.rebind(VOCABULARIES.token).toConstantValue(replacement);
    expect(registryOf(container, VOCABULARIES)).toBe(replacement);
    expect(registryOf(container, VOCABULARIES).names()).toEqual(['words']);
  });
});

describe('resolveByName', () => {
  const source = configDataSource('vocab.yaml');
  const registry = new NamedRegistry<VocabularyDefinition>('vocabulary');
  registry.register(bytes);
  registry.register(words);

  it('finds the definition and checks the entry against its schema', () => {
    const resolved = resolveByName(registry, 'words', { size: 1000 }, { path: ['vocab'], nameKey: 'name', source });
    expect(resolved.definition).toBe(words);
    expect(resolved.config).toEqual({ size: 1000 });
  });

  it('names an unknown entry at its key path and lists the registered ones', () => {
    expect(() => resolveByName(registry, 'bits', {}, { path: ['vocab'], nameKey: 'name', source })).toThrow(
      "vocab.yaml: vocab.name: unknown vocabulary 'bits' (registered: bytes, words; plugins can register more)",
    );
  });

  it("reports a bad key with the definition's own schema", () => {
    expect(() =>
      resolveByName(registry, 'bytes', { size: 255 }, { path: ['model', 'vocab'], nameKey: 'name', source }),
    ).toThrow(/^vocab\.yaml: model\.vocab\.size: /);
  });
});
