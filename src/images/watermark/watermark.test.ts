import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RawImage } from '../../domain/types.ts';
import { createWatermarker } from './index.ts';
import { syntheticImage, type SyntheticKind } from './synthetic-images.ts';
import { centralCrop, crop, jpeg, psnr, rescale, webp } from './testing/attacks.ts';

const watermarker = createWatermarker();
const KINDS: SyntheticKind[] = ['landscape', 'shapes', 'fbm', 'sky'];
const images = new Map<SyntheticKind, RawImage>(KINDS.map((kind) => [kind, syntheticImage(kind, 3)]));
const payloadFor = (i: number) => ({ issuerId: 40000 + i, generationId: 0x9e3779b9 - i * 7777 });
const marked = new Map(KINDS.map((kind, i) => [kind, watermarker.embed(images.get(kind)!, payloadFor(i))]));

function assertFound(image: RawImage, index: number, label: string): void {
  const result = watermarker.detect(image);
  assert.equal(result.detected, true, `${label}: not detected`);
  assert.deepEqual(result.payload, payloadFor(index), `${label}: wrong payload`);
  assert.ok(result.confidence >= 0.5 && result.confidence <= 1, `${label}: confidence ${result.confidence}`);
}

test('embed then detect on the clean image returns the payload', () => {
  KINDS.forEach((kind, i) => assertFound(marked.get(kind)!, i, kind));
});

test('the mark is invisible by the numbers: PSNR ≥ 40 dB', () => {
  for (const kind of KINDS) {
    const value = psnr(images.get(kind)!, marked.get(kind)!);
    assert.ok(value >= 40, `${kind}: PSNR ${value.toFixed(2)} dB`);
  }
});

test('embedding is deterministic and leaves the input untouched', () => {
  const image = images.get('landscape')!;
  const before = image.data.slice();
  const a = watermarker.embed(image, payloadFor(0));
  const b = createWatermarker().embed(image, payloadFor(0));
  assert.deepEqual(a.data, b.data);
  assert.deepEqual(a.data, marked.get('landscape')!.data);
  assert.deepEqual(image.data, before);
  assert.equal(a.width, image.width);
  assert.equal(a.height, image.height);
});

test('survives JPEG quality 50 and WebP quality 50 (sharp)', async () => {
  for (const [i, kind] of KINDS.entries()) {
    assertFound(await jpeg(marked.get(kind)!, 50), i, `${kind} jpeg50`);
  }
  assertFound(await webp(marked.get('shapes')!, 50), 1, 'shapes webp50');
});

test('survives 0.5× downscale, and JPEG 75 after it', async () => {
  for (const [i, kind] of KINDS.entries()) {
    const small = await rescale(marked.get(kind)!, 0.5);
    assert.equal(small.width, 512);
    assertFound(small, i, `${kind} 0.5x`);
  }
  assertFound(await jpeg(await rescale(marked.get('fbm')!, 0.5), 75), 2, 'fbm 0.5x + jpeg75');
});

test('survives a central crop keeping 80 % of the area, and an off-centre crop', async () => {
  for (const [i, kind] of KINDS.entries()) assertFound(await centralCrop(marked.get(kind)!, 0.8), i, `${kind} crop80`);
  assertFound(await crop(marked.get('landscape')!, 301, 17, 640, 500), 0, 'landscape off-centre crop');
});

test('unmarked images, crops and re-encodes are not detected', async () => {
  const candidates: RawImage[] = [...images.values(), syntheticImage('grating', 1), syntheticImage('grain', 2)];
  candidates.push(await centralCrop(images.get('shapes')!, 0.8), await jpeg(images.get('fbm')!, 60), await rescale(images.get('sky')!, 0.5));
  for (const image of candidates) {
    const result = watermarker.detect(image);
    assert.equal(result.detected, false);
    assert.equal(result.payload, null);
    assert.ok(result.confidence < 0.5);
  }
});

test('a different key neither finds nor forges the mark', () => {
  const other = createWatermarker({ key: 'another deployment' });
  assert.equal(other.detect(marked.get('landscape')!).detected, false);
  assertFound(watermarker.embed(other.embed(images.get('shapes')!, payloadFor(9)), payloadFor(1)), 1, 'double-marked');
});

test('other sizes: square, odd, and tiny inputs', () => {
  const square = syntheticImage('landscape', 5, 1328, 1328);
  const payload = { issuerId: 1, generationId: 2 };
  assert.deepEqual(watermarker.detect(watermarker.embed(square, payload)).payload, payload);
  const odd = syntheticImage('shapes', 6, 517, 333);
  assert.deepEqual(watermarker.detect(watermarker.embed(odd, payload)).payload, payload);
  const tiny = syntheticImage('sky', 1, 40, 30);
  const tinyMarked = watermarker.embed(tiny, payload);
  assert.equal(tinyMarked.data.length, tiny.data.length);
  assert.deepEqual(watermarker.detect(tinyMarked), { detected: false, confidence: 0, payload: null });
});

test('bad input is refused', () => {
  const image = images.get('sky')!;
  assert.throws(() => watermarker.embed(image, { issuerId: 70000, generationId: 1 }), RangeError);
  assert.throws(() => watermarker.detect({ width: 10, height: 10, data: new Uint8Array(10) }), RangeError);
});
