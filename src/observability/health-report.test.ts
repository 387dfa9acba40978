/** The health report: every dependency with its state, a hung one reported down after the time limit. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Engine } from '../domain/types.ts';
import { ANY_SIZE } from '../domain/engine-capabilities.ts';
import { createHealthReporter } from './health-report.ts';

const engine = (ok: boolean): Engine => ({
  id: 'e',
  kind: 'fake',
  description: 'fake',
  capabilities: () => ({ maxReferenceImages: 0, sizes: ANY_SIZE, negativePrompt: false, seed: false, progress: false, previews: false, masks: false, promptAdaptation: false }),
  load: async () => {},
  health: async () => ({ ok, detail: ok ? 'fine' : 'backend down' }),
  generate: async () => {
    throw new Error('not drawn here');
  },
  close: async () => {},
});

describe('health report', () => {
  it('reports each dependency and engine; ok when every dependency answers, whatever an engine says', async () => {
    const reporter = createHealthReporter({
      role: 'all',
      dependencies: [
        { name: 'database', check: async () => {} },
        { name: 'queue', check: async () => {} },
      ],
      engines: new Map([
        ['m1', engine(true)],
        ['m2', engine(false)],
      ]),
      isStarted: () => true,
      timeoutMs: 1000,
    });
    const report = await reporter.report();
    assert.equal(report.status, 'ok');
    assert.equal(report.role, 'all');
    assert.equal(report.checks.database?.ok, true);
    assert.equal(typeof report.checks.database?.latencyMs, 'number');
    assert.deepEqual(
      Object.fromEntries(Object.entries(report.checks.engines!).map(([m, r]) => [m, [r.ok, r.detail]])),
      { m1: [true, 'fine'], m2: [false, 'backend down'] },
    );
  });

  it('a dependency that hangs is reported down after the time limit; one that fails says why', async () => {
    let hung = 0;
    const reporter = createHealthReporter({
      role: 'api',
      dependencies: [
        { name: 'database', check: async () => {} },
        { name: 'queue', check: () => ((hung += 1), new Promise<void>(() => {})) },
        { name: 'blobs', check: async () => Promise.reject(new Error('bucket not found')) },
      ],
      isStarted: () => true,
      timeoutMs: 50,
    });
    const report = await reporter.report();
    assert.equal(hung, 1);
    assert.equal(report.status, 'degraded');
    assert.equal(report.checks.database?.ok, true);
    assert.deepEqual([report.checks.queue?.ok, report.checks.queue?.detail], [false, 'no answer within 50 ms']);
    assert.deepEqual([report.checks.blobs?.ok, report.checks.blobs?.detail], [false, 'bucket not found']);
    assert.equal(report.checks.engines, undefined, 'an api process has no engines to report');
  });

  it('is "loading" until started; engines are not asked before they loaded', async () => {
    let asked = 0;
    const reporter = createHealthReporter({
      role: 'worker',
      dependencies: [{ name: 'database', check: async () => {} }],
      engines: new Map([['m', { ...engine(true), health: async () => ((asked += 1), { ok: true }) }]]),
      isStarted: () => false,
      timeoutMs: 1000,
    });
    const report = await reporter.report();
    assert.equal(report.status, 'loading');
    assert.deepEqual([report.checks.engines?.m?.ok, report.checks.engines?.m?.detail], [false, 'loading']);
    assert.equal(asked, 0);
  });
});
