import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { startFakeComfyui, type FakeComfyui } from '../../../test/fakes/fake-comfyui.ts';
import { conformanceRequest, referenceImages } from '../testing/conformance.ts';
import { ComfyuiEngine } from './comfyui-engine.ts';

/** ComfyUI cannot delete input files, so the engine reuses a bounded set of upload names. */
describe('ComfyUI reference uploads do not accumulate', () => {
  let fake: FakeComfyui;
  let engine: ComfyuiEngine;
  const signal = () => new AbortController().signal;
  const names = () => fake.uploads.map((u) => `${u.subfolder}/${u.name}`);

  before(async () => {
    fake = await startFakeComfyui();
    engine = new ComfyuiEngine({ id: 'comfy-a', url: fake.url });
    await engine.load();
  });
  after(async () => {
    await engine.close();
    await fake.close();
  });
  beforeEach(() => fake.reset());

  it('consecutive jobs with different references overwrite the same files', async () => {
    await engine.generate(conformanceRequest({ referenceImages: referenceImages(2) }), signal());
    const first = names();
    assert.equal(first.length, 2);
    assert.match(first[0]!, /^qwen-image-api\/[0-9a-f]{8}-s0-1\.png$/);
    assert.match(first[1]!, /^qwen-image-api\/[0-9a-f]{8}-s0-2\.png$/);
    fake.reset();
    const other = referenceImages(2).map((image) => ({ ...image, data: new Uint8Array(image.data.length).fill(7) }));
    await engine.generate(conformanceRequest({ referenceImages: other }), signal());
    assert.deepEqual(names(), first, 'the second job reuses the names');
    // The workflow ComfyUI ran names exactly those files.
    assert.deepEqual(fake.prompts[0]!.images, first);
  });

  it('jobs in flight at once use different slots, so one never overwrites the other\'s references', async () => {
    await Promise.all([
      engine.generate(conformanceRequest({ referenceImages: referenceImages(1) }), signal()),
      engine.generate(conformanceRequest({ referenceImages: referenceImages(1) }), signal()),
    ]);
    const slots = names().map((n) => /-s(\d+)-1\.png$/.exec(n)?.[1]).sort();
    assert.deepEqual(slots, ['0', '1']);
    const ran = fake.prompts.map((p) => p.images[0]).sort();
    assert.deepEqual(ran, names().sort());
  });
});
