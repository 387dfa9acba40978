/**
 * The builtin engine adapts the prompt it is given to its model's words (the adapter main.ts injects), only when
 * the request allows it, and reports what it drew with as drawnPrompt; the picture is the one the adapted
 * prompt draws. A stand-in adapter keeps this test about the engine, not about the vocabulary table.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import type { EngineRequest } from '../../domain/types.ts';
import { createBuiltinEngine, type BuiltinEngine } from './builtin-engine.ts';

const TINY = path.resolve(import.meta.dirname, '../../../test/fixtures/tiny-model');
const adaptPrompt = (prompt: string) => prompt.replace(/\bscarlet\b/g, 'red').replace(/\bcabin\b/g, 'house');

function request(overrides: Partial<EngineRequest> = {}): EngineRequest {
  return {
    requestId: 'adapt-test',
    model: 'alibaba/qwen-image-2-0',
    prompt: 'a scarlet cabin',
    negativePrompt: '',
    width: 64,
    height: 64,
    seed: 3,
    referenceImages: [],
    ...overrides,
  };
}

describe('builtin engine prompt adaptation (tiny model)', () => {
  let engine: BuiltinEngine;
  const signal = () => new AbortController().signal;
  before(async () => {
    engine = createBuiltinEngine({ modelDir: TINY, threads: 1, steps: 2, adaptPrompt });
    await engine.load();
  });
  after(() => engine.close());

  test('with mayAdaptPrompt the adapted prompt is drawn and reported as drawnPrompt', async () => {
    const adapted = await engine.generate(request({ mayAdaptPrompt: true }), signal());
    assert.equal(adapted.drawnPrompt, 'a red house');
    const direct = await engine.generate(request({ prompt: 'a red house' }), signal());
    assert.equal(direct.drawnPrompt, undefined);
    assert.deepEqual(adapted.image.data, direct.image.data, 'the same pixels as drawing the adapted words directly');
  });

  test('without mayAdaptPrompt the prompt is drawn as given', async () => {
    const asGiven = await engine.generate(request(), signal());
    assert.equal(asGiven.drawnPrompt, undefined);
    const adapted = await engine.generate(request({ mayAdaptPrompt: true }), signal());
    assert.notDeepEqual(asGiven.image.data, adapted.image.data, '"scarlet cabin" is <unk> <unk> to the model, "red house" is not');
  });

  test('a prompt the adapter leaves unchanged reports no drawnPrompt; no adapter, no change', async () => {
    assert.equal((await engine.generate(request({ prompt: 'a red house', mayAdaptPrompt: true }), signal())).drawnPrompt, undefined);
    const plain = createBuiltinEngine({ modelDir: TINY, threads: 1, steps: 1 });
    await plain.load();
    try {
      assert.equal((await plain.generate(request({ mayAdaptPrompt: true }), signal())).drawnPrompt, undefined);
    } finally {
      await plain.close();
    }
  });
});
