import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import dns from 'node:dns';
import { encodePng, readPngText } from './png.ts';
import { isPublicAddress, createSafeLookup } from './address-policy.ts';
import { decodeImage, sniffImageFormat } from './decode-image.ts';

test('PNG text chunks round-trip, Latin-1 as tEXt and UTF-8 as iTXt, and the PNG still decodes', async () => {
  const image = { width: 4, height: 3, data: new Uint8Array(36).fill(200) };
  const png = await encodePng(image, [{ keyword: 'Prompt', text: '一只猫 "quoted"' }, { keyword: 'Seed', text: '42' }]);
  assert.deepEqual(readPngText(png), { Prompt: '一只猫 "quoted"', Seed: '42' });
  assert.ok(png.includes(Buffer.from('iTXtPrompt')) && png.includes(Buffer.from('tEXtSeed')));
  const meta = await sharp(png).metadata();
  assert.deepEqual([meta.width, meta.height], [4, 3]);
});

test('address policy: only global unicast passes', () => {
  for (const a of ['8.8.8.8', '1.1.1.1', '2606:4700::1111']) assert.equal(isPublicAddress(a), true, a);
  for (const a of ['127.0.0.1', '10.0.0.1', '172.16.5.4', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '::1', '::', 'fe80::1', 'fc00::1', '::ffff:127.0.0.1', '::ffff:10.0.0.1', '224.0.0.1', '255.255.255.255', 'not-an-ip']) {
    assert.equal(isPublicAddress(a), false, a);
  }
});

test('address policy: IPv4-compatible IPv6 (::/96, deprecated by RFC 4291 §2.5.5.1) is refused whole', () => {
  // Loopback, private and public embedded IPv4, in dotted, hex and fully written forms.
  for (const a of ['::127.0.0.1', '::7f00:1', '0:0:0:0:0:0:7f00:1', '::10.0.0.1', '::a9fe:a9fe', '::8.8.8.8', '::808:808']) {
    assert.equal(isPublicAddress(a), false, a);
  }
  // Next door, IPv4-mapped (::ffff:0:0/96) public addresses are still judged as IPv4.
  for (const a of ['::ffff:8.8.8.8', '::ffff:808:808']) assert.equal(isPublicAddress(a), true, a);
});

test('safe lookup refuses a name that resolves to loopback, and allows it when told to', async () => {
  const strict = createSafeLookup(false);
  const lax = createSafeLookup(true);
  const call = (fn: typeof strict) =>
    new Promise<unknown>((resolve) => (fn as any)('localhost', { all: true }, (err: unknown, addrs: unknown) => resolve(err ?? addrs)));
  const refused = (await call(strict)) as Error;
  assert.match(refused.message, /non-public address/);
  const allowed = (await call(lax)) as dns.LookupAddress[];
  assert.ok(Array.isArray(allowed) && allowed.length > 0);
});

test('sniffing goes by content; EXIF orientation is applied on decode', async () => {
  // 30×20 image stored with EXIF orientation 6 (rotate 90° clockwise to display) → decodes as 20×30.
  const jpeg = await sharp({ create: { width: 30, height: 20, channels: 3, background: '#ff0000' } }).jpeg().withMetadata({ orientation: 6 }).toBuffer();
  assert.equal(sniffImageFormat(jpeg), 'jpeg');
  assert.equal(sniffImageFormat(Buffer.from('GIF89a....')), 'gif');
  assert.equal(sniffImageFormat(Buffer.from('<html>')), null);
  const raw = await decodeImage(jpeg, { maxPixels: 1e6, maxSidePx: 1000 }, 'image_urls[0]');
  assert.deepEqual([raw.width, raw.height], [20, 30]);
});

test('large references are scaled to fit REFERENCE_MAX_SIDE_PX, aspect kept; alpha is flattened on white', async () => {
  const png = await sharp({ create: { width: 400, height: 100, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } } }).png().toBuffer();
  const raw = await decodeImage(png, { maxPixels: 1e6, maxSidePx: 200 }, 'image_urls[0]');
  assert.deepEqual([raw.width, raw.height], [200, 50]);
  assert.equal(raw.data.length, 200 * 50 * 3);
  assert.deepEqual(Array.from(raw.data.subarray(0, 3)), [255, 255, 255]);
});
