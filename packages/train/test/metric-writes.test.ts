import { describe, expect, it } from 'vitest';
import { MetricWrites } from '../src/run/metric-writes.js';

function deferred(): { promise: Promise<void>; resolve: () => void; reject: (error: Error) => void } {
  let resolve!: () => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<void>((yes, no) => {
    resolve = yes;
    reject = no;
  });
  return { promise, resolve, reject };
}

describe('MetricWrites', () => {
  it('does not wait for a write, and settles once every write is done', async () => {
    const writes = new MetricWrites();
    const first = deferred();
    const second = deferred();
    await writes.add(first.promise);
    await writes.add(second.promise);
    let settled = false;
    const settling = writes.settle().then(() => {
      settled = true;
    });
    first.resolve();
    await Promise.resolve();
    await Promise.resolve();
    expect(settled).toBe(false);
    second.resolve();
    await settling;
    expect(settled).toBe(true);
  });

  it("fails at the next step after a write fails, with the write's error", async () => {
    const writes = new MetricWrites();
    const failing = deferred();
    await writes.add(failing.promise);
    failing.reject(new Error('disk full'));
    await expect(writes.settle()).rejects.toThrow('disk full');
    await expect(writes.add(Promise.resolve())).rejects.toThrow('disk full');
    expect(() => writes.check()).toThrow('disk full');
  });

  it('waits once too many writes are unfinished', async () => {
    const writes = new MetricWrites();
    const gates = Array.from({ length: MetricWrites.MAX_PENDING + 1 }, () => deferred());
    for (const gate of gates.slice(0, -1)) await writes.add(gate.promise);
    let returned = false;
    const last = writes.add(gates.at(-1)!.promise).then(() => {
      returned = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(returned).toBe(false);
    for (const gate of gates) gate.resolve();
    await last;
    expect(returned).toBe(true);
  });
});
