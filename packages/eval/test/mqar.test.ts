import {
  applyPlugin,
  createContainer,
  InterleaveError,
  type TaskRegistry,
  TOKENS,
  type TokenBatch,
} from '@interleave/core';
import { describe, expect, it } from 'vitest';
import { type MqarConfig, MqarTask, mqarSchema, registerBuiltinTasks } from '../src/index.js';

function mqarConfig(keys: Record<string, unknown>): MqarConfig {
  return mqarSchema.parse(keys);
}

function mqar(keys: Record<string, unknown>, vocabSize = 8192, seed = 7): MqarTask {
  return new MqarTask(mqarConfig(keys), { vocabSize, seed });
}

function row(batch: TokenBatch, index: number) {
  const span = (array: Int32Array | Float32Array) => array.subarray(index * batch.seqLen, (index + 1) * batch.seqLen);
  return { inputs: span(batch.inputs), targets: span(batch.targets), mask: span(batch.mask) };
}

function* rows(batches: TokenBatch[]) {
  for (const batch of batches) for (let i = 0; i < batch.batchSize; i++) yield row(batch, i);
}

/** Query slots (0-based, counted in pairs after the context) in the order of the keys in the context. */
function querySlotsByKeyOrder(example: ReturnType<typeof row>, numKvPairs: number): number[] {
  const slotOfKey = new Map<number, number>();
  for (let t = 2 * numKvPairs; t < example.mask.length; t++) {
    if (example.mask[t] === 1) slotOfKey.set(example.inputs[t] as number, (t - 2 * numKvPairs) / 2);
  }
  return Array.from({ length: numKvPairs }, (_, i) => slotOfKey.get(example.inputs[2 * i] as number) as number);
}

/** Every way `example` breaks the MQAR layout, as readable lines (none for a good example). */
function layoutProblems(example: ReturnType<typeof row>, numKvPairs: number, vocabSize: number): string[] {
  const problems: string[] = [];
  const half = Math.floor(vocabSize / 2);
  const valueOfKey = new Map<number, number>();
  const values = new Set<number>();
  for (let i = 0; i < numKvPairs; i++) {
    const key = example.inputs[2 * i] as number;
    const value = example.inputs[2 * i + 1] as number;
    if (key < 1 || key >= half) problems.push(`key ${key} at ${2 * i} is outside [1, ${half})`);
    if (value < half || value >= vocabSize)
      problems.push(`value ${value} at ${2 * i + 1} is outside [${half}, ${vocabSize})`);
    if (valueOfKey.has(key)) problems.push(`key ${key} repeats in the context`);
    if (values.has(value)) problems.push(`value ${value} repeats in the context`);
    valueOfKey.set(key, value);
    values.add(value);
  }
  const queried = new Set<number>();
  for (let t = 0; t < example.mask.length; t++) {
    const token = example.inputs[t] as number;
    const target = example.targets[t] as number;
    if (!(token >= 0 && token < vocabSize)) problems.push(`token ${token} at ${t} is outside the vocabulary`);
    if (example.mask[t] === 0) {
      if (target !== 0) problems.push(`unscored position ${t} has target ${target}`);
      continue;
    }
    if (example.mask[t] !== 1) problems.push(`mask ${example.mask[t]} at ${t}`);
    if (t < 2 * numKvPairs || (t - 2 * numKvPairs) % 2 !== 0)
      problems.push(`query at ${t} is not at an even offset after the context`);
    if (!valueOfKey.has(token)) problems.push(`query ${token} at ${t} is not a key`);
    if (queried.has(token)) problems.push(`key ${token} is queried twice`);
    queried.add(token);
    if (target !== valueOfKey.get(token))
      problems.push(`query ${token} at ${t} has target ${target}, not ${valueOfKey.get(token)}`);
  }
  if (queried.size !== numKvPairs) problems.push(`${queried.size} keys queried, not ${numKvPairs}`);
  return problems;
}

function add(totals: number[], index: number, amount: number): void {
  totals[index] = (totals[index] ?? 0) + amount;
}

describe('mqar schema', () => {
  it('fills in the defaults', () => {
    expect(mqarConfig({ seq_len: 64, num_kv_pairs: 8 })).toEqual({
      seq_len: 64,
      num_kv_pairs: 8,
      train_examples: 100_000,
      test_examples: 1000,
      train_power_a: 0.01,
      test_power_a: 0.01,
      random_non_queries: true,
    });
  });

  it('reports seq_len shorter than 4 × num_kv_pairs against seq_len', () => {
    const result = mqarSchema.safeParse({ seq_len: 30, num_kv_pairs: 8 });
    expect(result.success).toBe(false);
    expect(result.error?.issues).toHaveLength(1);
    expect(result.error?.issues[0]?.path).toEqual(['seq_len']);
    expect(result.error?.issues[0]?.message).toMatch(/at least 4 × num_kv_pairs = 32/);
  });

  it('reports an odd seq_len', () => {
    const result = mqarSchema.safeParse({ seq_len: 65, num_kv_pairs: 8 });
    expect(result.error?.issues.map((issue) => [issue.path, issue.message])).toEqual([
      [['seq_len'], 'seq_len must be even'],
    ]);
  });

  it('rejects unknown keys by name', () => {
    const result = mqarSchema.safeParse({ seq_len: 64, num_kv_pairs: 8, num_kv_pair: 4 });
    expect(result.error?.issues[0]?.code).toBe('unrecognized_keys');
    expect(result.error?.issues[0]).toMatchObject({ keys: ['num_kv_pair'] });
  });

  it('rejects non-positive and fractional counts', () => {
    const paths = (keys: Record<string, unknown>) =>
      mqarSchema.safeParse(keys).error?.issues.map((issue) => issue.path);
    expect(paths({ seq_len: 64, num_kv_pairs: 0 })).toEqual([['num_kv_pairs']]);
    expect(paths({ seq_len: 64, num_kv_pairs: 8, train_examples: 1.5 })).toEqual([['train_examples']]);
    expect(paths({ seq_len: 64, num_kv_pairs: 8, train_power_a: 0 })).toEqual([['train_power_a']]);
    expect(paths({ seq_len: 64, num_kv_pairs: 8, test_power_a: -1 })).toEqual([['test_power_a']]);
  });

  it('turns the old power_a key into one message that says how to migrate', () => {
    const issues = mqarSchema.safeParse({ seq_len: 64, num_kv_pairs: 8, power_a: 0.01 }).error?.issues;
    expect(issues).toHaveLength(1);
    expect(issues?.[0]?.path).toEqual(['power_a']);
    expect(issues?.[0]?.message).toMatch(/split into train_power_a and test_power_a/);
  });
});

describe('mqar vocabulary checks', () => {
  it('needs model.vocab_size > task.seq_len', () => {
    expect(() => mqar({ seq_len: 64, num_kv_pairs: 8 }, 64)).toThrow(InterleaveError);
    expect(() => mqar({ seq_len: 64, num_kv_pairs: 8 }, 64)).toThrow(/model\.vocab_size.*task\.seq_len/);
    expect(() => mqar({ seq_len: 64, num_kv_pairs: 8 }, 65)).not.toThrow();
  });
});

describe('mqar examples', () => {
  const shapes = [
    { seq_len: 64, num_kv_pairs: 8, vocabSize: 8192 },
    // The tightest legal case: seq_len = 4K (every slot is a query) and vocab_size = seq_len + 1.
    { seq_len: 32, num_kv_pairs: 8, vocabSize: 33 },
    { seq_len: 512, num_kv_pairs: 64, vocabSize: 8192 },
  ];

  for (const { vocabSize, ...keys } of shapes) {
    it(`are well formed for seq_len=${keys.seq_len} K=${keys.num_kv_pairs} V=${vocabSize}`, () => {
      const task = mqar({ ...keys, test_examples: 100 }, vocabSize);
      const batches = [task.trainBatch(0, 100), task.trainBatch(1, 100), ...task.testBatches(32)];
      for (const batch of batches) {
        expect(batch.inputs).toHaveLength(batch.batchSize * keys.seq_len);
        expect(batch.mask.reduce((sum, flag) => sum + flag, 0)).toBe(batch.batchSize * keys.num_kv_pairs);
      }
      const problems = [...rows(batches)].flatMap((example) => layoutProblems(example, keys.num_kv_pairs, vocabSize));
      expect(problems).toEqual([]);
    });
  }

  it('pads with token 0 when random_non_queries is off', () => {
    const task = mqar({ seq_len: 64, num_kv_pairs: 8, random_non_queries: false });
    for (const example of rows([task.trainBatch(0, 50)])) {
      for (let t = 16; t < 64; t++) if (example.mask[t] === 0) expect(example.inputs[t]).toBe(0);
    }
  });

  it('fills non-query positions from the whole vocabulary when random_non_queries is on', () => {
    const task = mqar({ seq_len: 64, num_kv_pairs: 8 }, 100);
    const fill = new Set<number>();
    for (const example of rows([task.trainBatch(0, 200)])) {
      for (let t = 16; t < 64; t++) if (example.mask[t] === 0) fill.add(example.inputs[t] as number);
    }
    // 200 × 40 uniform draws from 100 tokens leave none out (miss chance per token ~ e^-80).
    expect(fill.size).toBe(100);
  });
});

describe('mqar determinism', () => {
  const keys = { seq_len: 64, num_kv_pairs: 8, train_examples: 1000 };

  it('gives identical batches for the same seed, whatever was generated before', () => {
    const first = mqar(keys, 8192, 3);
    const second = mqar(keys, 8192, 3);
    second.trainBatch(40, 16); // a different history must not matter
    expect(second.trainBatch(5, 16)).toEqual(first.trainBatch(5, 16));
    expect(second.testBatches(64)).toEqual(first.testBatches(64));
  });

  it('gives different batches for different batch indices and seeds', () => {
    const task = mqar(keys, 8192, 3);
    expect(task.trainBatch(6, 16).inputs).not.toEqual(task.trainBatch(5, 16).inputs);
    expect(mqar(keys, 8192, 4).trainBatch(5, 16).inputs).not.toEqual(task.trainBatch(5, 16).inputs);
    expect(mqar(keys, 8192, 4).testBatches(64)[0]?.inputs).not.toEqual(task.testBatches(64)[0]?.inputs);
  });

  it('builds each batch from the train examples at its positions', () => {
    const task = mqar(keys);
    const batch = task.trainBatch(3, 10);
    for (let r = 0; r < 10; r++) {
      expect(task.trainExample(task.trainExampleAt(30 + r)).inputs).toEqual(row(batch, r).inputs);
    }
  });
});

describe('mqar train and test sets', () => {
  it('draws no test example identical to one of the first 5000 train examples', () => {
    // A small vocabulary makes accidental equality as likely as it gets.
    const task = mqar({ seq_len: 16, num_kv_pairs: 2, train_examples: 5000 }, 17);
    const train = new Set<string>();
    for (let i = 0; i < 5000; i++) train.add(task.trainExample(i).inputs.join(','));
    expect(train.size).toBe(5000);
    for (const example of rows(task.testBatches(250))) expect(train.has(example.inputs.join(','))).toBe(false);
  });

  it('returns every test example once, in batches whose last may be smaller', () => {
    const task = mqar({ seq_len: 64, num_kv_pairs: 8, test_examples: 1000 });
    const batches = task.testBatches(300);
    expect(batches.map((batch) => batch.batchSize)).toEqual([300, 300, 300, 100]);
    expect(row(batches[3] as TokenBatch, 99).inputs).toEqual(task.testExample(999).inputs);
  });

  it('visits every train example exactly once per epoch, each epoch in a new order', () => {
    const size = 50;
    const task = mqar({ seq_len: 64, num_kv_pairs: 8, train_examples: size });
    const epoch = (e: number) => Array.from({ length: size }, (_, p) => task.trainExampleAt(e * size + p));
    const identity = Array.from({ length: size }, (_, i) => i);
    for (const e of [0, 1, 2]) expect([...epoch(e)].sort((a, b) => a - b)).toEqual(identity);
    expect(epoch(1)).not.toEqual(epoch(0));
    expect(epoch(0)).not.toEqual(identity);

    // The same through batches that do not divide the epoch, checked on the tokens themselves.
    const byContent = new Map(identity.map((i) => [task.trainExample(i).inputs.join(','), i]));
    const seen = Array.from({ length: 3 * size }, () => -1);
    for (let b = 0; b * 7 < 3 * size; b++) {
      const batch = task.trainBatch(b, 7);
      for (let r = 0; r < 7 && b * 7 + r < 3 * size; r++) {
        seen[b * 7 + r] = byContent.get(row(batch, r).inputs.join(',')) ?? -1;
      }
    }
    expect(seen).toEqual([...epoch(0), ...epoch(1), ...epoch(2)]);

    // A batch larger than the whole set spans several epochs in the same order.
    const large = task.trainBatch(0, 3 * size);
    const largeSeen = Array.from({ length: 3 * size }, (_, r) => byContent.get(row(large, r).inputs.join(',')));
    expect(largeSeen).toEqual(seen);
  });
});

describe('mqar query gaps', () => {
  const seqLen = 64;
  const numKvPairs = 8;
  const slots = (seqLen - 2 * numKvPairs) / 2;
  const examples = 4000;

  function slotsOfKeys(powerA: number): number[][] {
    const task = mqar({ seq_len: seqLen, num_kv_pairs: numKvPairs, test_power_a: powerA, test_examples: examples });
    return [...rows(task.testBatches(500))].map((example) => querySlotsByKeyOrder(example, numKvPairs));
  }

  it('draws the first key’s slot with probability ∝ g^(power_a − 1) (chi-square)', () => {
    const powerA = 0.01;
    const weights = Array.from({ length: slots }, (_, g) => (g + 1) ** (powerA - 1));
    const total = weights.reduce((sum, w) => sum + w, 0);
    const counts = new Array<number>(slots).fill(0);
    for (const keySlots of slotsOfKeys(powerA)) add(counts, keySlots[0] as number, 1);
    const chiSquare = counts.reduce((sum, count, g) => {
      const expected = (examples * (weights[g] as number)) / total;
      return sum + (count - expected) ** 2 / expected;
    }, 0);
    // 23 degrees of freedom: the 99.9% quantile is 49.7.
    expect(chiSquare).toBeLessThan(49.7);
  });

  it('favours short gaps with the default power_a, and later keys get later slots as in Zoology', () => {
    const occupancy = new Array<number>(slots).fill(0);
    const meanSlotOfKey = new Array<number>(numKvPairs).fill(0);
    for (const keySlots of slotsOfKeys(0.01)) {
      keySlots.forEach((slot, key) => {
        add(occupancy, slot, 1);
        add(meanSlotOfKey, key, slot / examples);
      });
    }
    const queries = examples * numKvPairs;
    const firstQuarter = occupancy.slice(0, slots / 4).reduce((a, b) => a + b, 0) / queries;
    const lastQuarter = occupancy.slice((3 * slots) / 4).reduce((a, b) => a + b, 0) / queries;
    // Uniform slots would put 25% of the queries in each quarter; the power law ~48% vs ~11%.
    expect(firstQuarter).toBeGreaterThan(0.4);
    expect(lastQuarter).toBeLessThan(0.15);
    expect(meanSlotOfKey[0] as number).toBeLessThan((meanSlotOfKey[numKvPairs - 1] as number) - 3);
  });

  it('draws train and test gaps from their own power law (train_power_a, test_power_a)', () => {
    const task = mqar({
      seq_len: seqLen,
      num_kv_pairs: numKvPairs,
      train_power_a: 1,
      test_power_a: 0.01,
      train_examples: 2000,
      test_examples: 2000,
    });
    const meanSlot = (batches: TokenBatch[]) => {
      const all = [...rows(batches)].flatMap((example) => querySlotsByKeyOrder(example, numKvPairs));
      return all.reduce((sum, slot) => sum + slot, 0) / all.length;
    };
    const train = meanSlot([task.trainBatch(0, 2000)]);
    const test = meanSlot(task.testBatches(500));
    // Uniform slots average (slots − 1)/2 = 11.5; the power law favours early ones (~7).
    expect(Math.abs(train - 11.5)).toBeLessThan(0.5);
    expect(test).toBeLessThan(9);
  });

  it('spreads queries uniformly over the slots with power_a = 1', () => {
    const occupancy = new Array<number>(slots).fill(0);
    for (const keySlots of slotsOfKeys(1)) for (const slot of keySlots) add(occupancy, slot, 1);
    // Each slot is taken with probability K/slots = 1/3: 1333 ± 30 (one standard deviation).
    const expected = (examples * numKvPairs) / slots;
    for (const count of occupancy) expect(Math.abs(count - expected)).toBeLessThan(150);
  });
});

describe('registerBuiltinTasks', () => {
  it('registers mqar', async () => {
    const container = createContainer();
    await applyPlugin(container, registerBuiltinTasks);
    const mqarDefinition = container.get<TaskRegistry>(TOKENS.TaskRegistry).get('mqar');
    expect(mqarDefinition?.name).toBe('mqar');
    const task = mqarDefinition?.create(mqarDefinition.schema.parse({ seq_len: 64, num_kv_pairs: 4 }), {
      vocabSize: 128,
      seed: 0,
    });
    expect(task?.description).toBe('mqar seq_len=64 kv_pairs=4');
    expect(task?.trainBatch(0, 2).mask.reduce((sum, flag) => sum + flag, 0)).toBe(8);
  });
});
