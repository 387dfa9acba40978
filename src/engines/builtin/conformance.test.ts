/** The builtin engine passes the same conformance suite as every remote engine (tiny test model). */
import path from 'node:path';
import { runEngineConformance } from '../testing/conformance.ts';
import { createBuiltinEngine } from './builtin-engine.ts';

const TINY = path.resolve(import.meta.dirname, '../../../test/fixtures/tiny-model');

runEngineConformance('builtin (tiny model)', async () => ({
  engine: createBuiltinEngine({ modelDir: TINY, threads: 1 }),
  teardown: async () => undefined,
  capabilities: { progress: true, maxReferenceImages: 3, abort: true },
}));
