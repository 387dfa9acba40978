import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import type { RawImage } from '../domain/types.ts';
import { encodePreviewDataUri } from './preview.ts';

/** A smooth two-colour gradient: red grows left to right, blue top to bottom. */
function gradient(width: number, height: number): RawImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3;
      data[o] = Math.round((255 * x) / (width - 1));
      data[o + 1] = 96;
      data[o + 2] = Math.round((255 * y) / (height - 1));
    }
  }
  return { width, height, data };
}

async function decodeDataUri(uri: string): Promise<{ format: string | undefined; image: RawImage }> {
  const match = /^data:image\/webp;base64,([A-Za-z0-9+/]+=*)$/.exec(uri);
  assert.ok(match, `a base64 WebP data: URI, got ${uri.slice(0, 40)}…`);
  const bytes = Buffer.from(match[1]!, 'base64');
  const { format } = await sharp(bytes).metadata();
  const { data, info } = await sharp(bytes).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { format, image: { width: info.width, height: info.height, data: new Uint8Array(data) } };
}

test('a large image is scaled to fit the box, aspect kept, and still looks like its source', async () => {
  const source = gradient(1024, 768);
  const { format, image } = await decodeDataUri(await encodePreviewDataUri(source));
  assert.equal(format, 'webp');
  assert.deepEqual([image.width, image.height], [256, 192]);
  const expected = await sharp(source.data, { raw: { width: 1024, height: 768, channels: 3 } }).resize(256, 192).raw().toBuffer();
  let sum = 0;
  for (let i = 0; i < expected.length; i++) sum += Math.abs(expected[i]! - image.data[i]!);
  // Quality 70 on a smooth gradient measured about 1 level; 4 leaves room for libwebp versions.
  assert.ok(sum / expected.length < 4, `mean |Δ| = ${(sum / expected.length).toFixed(2)}`);
});

test('the longest side is the one fitted, for tall images and other box sizes', async () => {
  const { image } = await decodeDataUri(await encodePreviewDataUri(gradient(100, 400), 64));
  assert.deepEqual([image.width, image.height], [16, 64]);
});

test('a small image is sent at its own size, never enlarged', async () => {
  const { image } = await decodeDataUri(await encodePreviewDataUri(gradient(56, 40)));
  assert.deepEqual([image.width, image.height], [56, 40]);
});

test('rejects a buffer that does not match its size, and a box that is not a positive integer', async () => {
  await assert.rejects(encodePreviewDataUri({ width: 4, height: 4, data: new Uint8Array(10) }), RangeError);
  await assert.rejects(encodePreviewDataUri(gradient(8, 8), 0), RangeError);
});
