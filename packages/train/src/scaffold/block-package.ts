/**
 * The files `interleave new-block` writes: an external plugin package with one block, its
 * contract test and an MQAR config (docs/plugins.md). The block is a working mixer — a gated
 * causal short convolution, y = W_out·(conv_K(u) ⊙ silu(g)) with [u, g] = W_in·x — so the
 * package trains and passes its tests as generated, and shows every part of the contract:
 * schema, parameters (init, decay), forward, initState/step, flops.
 */

export interface BlockPackageNames {
  /** The block's registered name, e.g. `my_mixer` (what configs write as `block:`). */
  block: string;
  /** The npm package name, e.g. `interleave-block-my-mixer` (what configs list in `plugins:`). */
  packageName: string;
  /** How the package depends on @interleave/<name>, e.g. `workspace:*`. */
  interleaveDependency: (name: 'core' | 'blocks' | 'train') => string;
}

/** `my_mixer` → `my-mixer` (file names) and `MyMixer` (identifiers). */
export function blockNameForms(block: string): { kebab: string; camel: string } {
  const words = block.split('_').filter(Boolean);
  const kebab = words.join('-');
  const camel = words.map((word, index) => (index === 0 ? word : word[0]?.toUpperCase() + word.slice(1))).join('');
  return { kebab, camel };
}

/** Every file of the package, by path relative to its root. */
export function blockPackageFiles(names: BlockPackageNames): Record<string, string> {
  const { kebab, camel } = blockNameForms(names.block);
  return {
    'package.json': packageJson(names),
    'README.md': readme(names, kebab),
    [`src/${kebab}.ts`]: blockSource(names, camel),
    'src/index.ts': indexSource(camel, kebab),
    'vitest.config.ts': VITEST_CONFIG,
    [`test/${kebab}.contract.test.ts`]: contractTest(camel, kebab),
    [`configs/mqar-${kebab}.yaml`]: mqarConfig(names, kebab),
  };
}

// Its own config, so that vitest does not pick up the config of a workspace above the package.
const VITEST_CONFIG = `import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The gradient checks of the block contract take tens of seconds on a loaded CPU.
    testTimeout: 120_000,
  },
});
`;

function packageJson(names: BlockPackageNames): string {
  const manifest = {
    name: names.packageName,
    version: '0.1.0',
    private: true,
    type: 'module',
    description: `The '${names.block}' block, an Interleave plugin.`,
    exports: { '.': './src/index.ts' },
    scripts: { test: 'vitest run' },
    dependencies: {
      '@interleave/core': names.interleaveDependency('core'),
      '@tensorflow/tfjs': '4.22.0',
      zod: '4.6.7',
    },
    devDependencies: {
      '@interleave/blocks': names.interleaveDependency('blocks'),
      '@interleave/train': names.interleaveDependency('train'),
      vitest: '4.1.12',
    },
  };
  return `${JSON.stringify(manifest, null, 2)}\n`;
}

function readme(names: BlockPackageNames, kebab: string): string {
  return `# ${names.packageName}

The \`${names.block}\` block as an Interleave plugin package: a gated causal short convolution,
y = W_out·(conv_K(u) ⊙ silu(g)) with [u, g] = W_in·x. Replace its equations with yours; the
contract test tells you, one line per broken rule, what the new block gets wrong.

- \`src/${kebab}.ts\`: the block (schema, parameters, forward, initState/step, flops);
- \`src/index.ts\`: the plugin, registering the block (a config loads it with
  \`plugins: [${names.packageName}]\`);
- \`test/${kebab}.contract.test.ts\`: the block contract (\`runBlockContract\`);
- \`configs/mqar-${kebab}.yaml\`: MQAR with this block interleaved with sliding-window attention.

\`\`\`sh
pnpm test                                              # the contract tests
pnpm interleave train configs/mqar-${kebab}.yaml       # train it
\`\`\`

The contract and the plugin API are described in Interleave's docs/plugins.md.
`;
}

function blockSource(names: BlockPackageNames, camel: string): string {
  return `/**
 * ${names.block}: a gated causal short convolution, y = W_out·(conv_K(u) ⊙ silu(g)) with
 * [u, g] = W_in·x, where conv_K is a depthwise causal convolution of kernel_size taps
 * (PyTorch's Conv1d layout: tap k multiplies u_{t − (K − 1) + k}).
 */
import {
  ACTIVATION_OPS,
  type BlockDefinition,
  constantInit,
  depthwiseConvFlops,
  fanInUniformInit,
  float32State,
  linearFlops,
  type Mixer,
  matmul,
  pointwiseFlops,
  sumFlops,
} from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';

export const ${camel}Schema = z.strictObject({
  /** Taps of the causal convolution; the recurrent state keeps the last kernel_size − 1 inputs. */
  kernel_size: z.number().int().min(2).default(4),
});

export type ${capitalize(camel)}Config = z.infer<typeof ${camel}Schema>;

/** The last kernel_size − 1 convolution inputs, oldest first. */
export type ${capitalize(camel)}State = { window: tf.Tensor3D };

export const ${camel}Block: BlockDefinition<${capitalize(camel)}Config> = {
  name: '${names.block}',
  description: 'A gated causal short convolution: W_out·(conv(u) ⊙ silu(g)), [u, g] = W_in·x.',
  schema: ${camel}Schema,
  create({ dModel, params }, config): Mixer<${capitalize(camel)}State> {
    const taps = config.kernel_size;
    // PyTorch's defaults: Linear and Conv1d weights uniform in ±1/√fan_in. Matrices decay;
    // the convolution's taps and bias are excluded from weight decay explicitly.
    const inProj = params.create('in_proj.weight', [2 * dModel, dModel], fanInUniformInit(dModel));
    const convWeight = params.create('conv.weight', [dModel, taps], fanInUniformInit(taps), { decay: false });
    const convBias = params.create('conv.bias', [dModel], constantInit(0));
    const outProj = params.create('out_proj.weight', [dModel, dModel], fanInUniformInit(dModel));

    /** [..., D] → u, g, each [..., D]. */
    const project = (x: tf.Tensor): [tf.Tensor, tf.Tensor] => {
      const flat = matmul(x.reshape([-1, dModel]), inProj, false, true);
      const [u, g] = tf.split(flat, 2, 1) as [tf.Tensor2D, tf.Tensor2D];
      const shape = [...x.shape.slice(0, -1), dModel];
      return [u.reshape(shape), g.reshape(shape)];
    };
    const output = (convolved: tf.Tensor, gate: tf.Tensor) => {
      const mixed = convolved.mul(tf.mul(gate, tf.sigmoid(gate)));
      return matmul(mixed.reshape([-1, dModel]), outProj, false, true).reshape(mixed.shape);
    };
    /** Tap k of every channel as [K, D], so that tap k broadcasts over [B, ·, D]. */
    const tapsByChannel = () => convWeight.transpose();

    return {
      forward: (x) =>
        tf.tidy(() => {
          const [batch, length] = x.shape;
          const [u, gate] = project(x);
          const padded = tf.pad(u, [
            [0, 0],
            [taps - 1, 0],
            [0, 0],
          ]);
          const weights = tapsByChannel();
          let convolved: tf.Tensor = convBias;
          for (let tap = 0; tap < taps; tap++) {
            const shifted = padded.slice([0, tap, 0], [batch, length, dModel]);
            convolved = convolved.add(shifted.mul(weights.slice([tap, 0], [1, dModel])));
          }
          return output(convolved, gate) as tf.Tensor3D;
        }),
      initState: (batchSize) => ({ window: tf.zeros([batchSize, taps - 1, dModel]) }),
      step: (x, state) =>
        tf.tidy(() => {
          const [batch] = x.shape;
          const [u, gate] = project(x);
          const full = tf.concat([state.window, u.reshape([batch, 1, dModel])], 1);
          const convolved = full.mul(tapsByChannel().expandDims(0)).sum(1).add(convBias);
          return {
            y: output(convolved, gate) as tf.Tensor2D,
            state: { window: full.slice([0, 1, 0], [batch, taps - 1, dModel]) as tf.Tensor3D },
          };
        }),
    };
  },
  // What \`step\` carries: the convolution's last kernel_size − 1 inputs, whatever the length.
  stateBytes: (config, { dModel }) => float32State((config.kernel_size - 1) * dModel),
  flops: (config, { dModel }) =>
    sumFlops(
      linearFlops(dModel, 2 * dModel), // W_in
      depthwiseConvFlops(dModel, config.kernel_size), // the causal convolution, with its bias
      pointwiseFlops((ACTIVATION_OPS.silu + 1) * dModel), // silu(g) and the product with the convolution
      linearFlops(dModel, dModel), // W_out
    ),
};
`;
}

function indexSource(camel: string, kebab: string): string {
  return `import type { Plugin } from '@interleave/core';
import { ${camel}Block } from './${kebab}.js';

export * from './${kebab}.js';

/** The plugin: a config that lists this package under \`plugins:\` gets the block. */
const register: Plugin = (api) => api.registerBlock(${camel}Block);
export default register;
`;
}

function contractTest(camel: string, kebab: string): string {
  return `import { runBlockContract } from '@interleave/blocks/testing';
import { ${camel}Block } from '../src/${kebab}.js';

// The block contract (shapes, causality, step = forward, gradients, no leaked tensors, same
// seed → same parameters) on the CPU backends, with the default and the shortest kernel.
runBlockContract(${camel}Block, {}, { backends: ['cpu', 'wasm'] });
runBlockContract(${camel}Block, { kernel_size: 2 }, { backends: ['wasm'] });
`;
}

function mqarConfig(names: BlockPackageNames, kebab: string): string {
  return `# MQAR with the ${names.block} block interleaved with sliding-window attention. The plugin is
# this package, loaded by name (run from the package's directory, or from any directory where
# the package is installed).
name: mqar-${kebab}
seed: 0
backend: auto
plugins: [${names.packageName}]
model:
  vocab_size: 128
  d_model: 64
  layers:
    - { block: ${names.block}, kernel_size: 4 }
    - { block: swa, window: 16, heads: 2 }
task:
  name: mqar
  seq_len: 64
  num_kv_pairs: 8
  random_non_queries: false
train:
  steps: 600
  batch_size: 32
  optimizer: { name: adamw, lr: 3.0e-3, weight_decay: 0.1 }
  schedule: { warmup_steps: 50, decay: cosine }
  eval_every: 200
  log_every: 25
tracking: { uri: ./mlruns, experiment: ${kebab} }
`;
}

function capitalize(word: string): string {
  return word.length === 0 ? word : (word[0] as string).toUpperCase() + word.slice(1);
}
