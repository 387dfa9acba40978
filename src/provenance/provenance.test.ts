/** The signer and reader on their own: formats, options, and the refusals at start. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import sharp from 'sharp';
import { readConfig, ConfigError } from '../config/config.ts';
import { createDevCertificateChain } from './dev-certificate.ts';
import { createContentCredentialsSigner, type GenerationFacts, type SignableMimeType } from './sign.ts';
import { createManifestReader } from './read.ts';
import { payloadOfSoftBinding, softBindingValue } from './soft-binding.ts';
import { ProvenanceConfigError } from './pem.ts';

const chain = createDevCertificateChain();
const software = { name: 'qwen-image-server', version: '9.9.9' };
const facts: GenerationFacts = {
  model: 'alibaba/qwen-image-2-0',
  engine: 'builtin',
  prompt: 'a yellow sun over the sea',
  drawnPrompt: 'a yellow sun over the sea, Ultra HD',
  createdAtMs: Date.UTC(2026, 0, 2, 3, 4, 5),
  watermark: { issuerId: 0xbeef, generationId: 0xdeadbeef },
};
const raw = Buffer.alloc(96 * 64 * 3);
for (let i = 0; i < raw.length; i++) raw[i] = (i * 31 + (i >> 7)) & 0xff;
const pixels = () => sharp(raw, { raw: { width: 96, height: 64, channels: 3 } });

test('PNG, JPEG and WebP are signed and read back trusted with the CA, valid without', async () => {
  const signer = await createContentCredentialsSigner({ certPem: chain.certPem, keyPem: chain.keyPem, software, includePrompt: false, thumbnail: false });
  const trusted = createManifestReader({ trustAnchorsPem: chain.caPem });
  const untrusted = createManifestReader({ trustAnchorsPem: null });
  const assets: Array<[SignableMimeType, Buffer]> = [
    ['image/png', await pixels().png().toBuffer()],
    ['image/jpeg', await pixels().jpeg().toBuffer()],
    ['image/webp', await pixels().webp().toBuffer()],
  ];
  for (const [mimeType, asset] of assets) {
    const signed = await signer.sign(asset, mimeType, facts);
    assert.equal((await sharp(signed).metadata()).format, mimeType.split('/')[1]);
    const a = await trusted(signed);
    const b = await untrusted(signed);
    assert.ok(a.present && b.present);
    assert.equal(a.state, 'trusted', `${mimeType}: ${JSON.stringify(a.failures)}`);
    // Reading with anchors must not leave them behind for a reader without (c2pa-rs settings are per call here).
    assert.equal(b.state, 'valid', mimeType);
    const binding = a.assertions.find((x) => x.label === 'c2pa.soft-binding');
    assert.deepEqual(payloadOfSoftBinding(binding?.data), facts.watermark, mimeType);
  }
});

test('the prompt is hashed unless included; no thumbnail unless asked, and a thumbnail is what makes a manifest big', async () => {
  const png = await pixels().png().toBuffer();
  const read = createManifestReader({ trustAnchorsPem: null });
  const hashed = await createContentCredentialsSigner({ certPem: chain.certPem, keyPem: chain.keyPem, software, includePrompt: false, thumbnail: false });
  const withPrompt = await createContentCredentialsSigner({ certPem: chain.certPem, keyPem: chain.keyPem, software, includePrompt: true, thumbnail: true });
  const a = await read(await hashed.sign(png, 'image/png', facts));
  const signedWithThumbnail = await withPrompt.sign(png, 'image/png', facts);
  const b = await read(signedWithThumbnail);
  assert.ok(a.present && b.present);
  const created = (r: typeof a) => (r.present ? (r.assertions.find((x) => x.label === 'c2pa.actions.v2')!.data as any).actions[0] : null);
  assert.equal(created(a).parameters.prompt_sha256, crypto.createHash('sha256').update(facts.prompt).digest('hex'));
  assert.equal(created(a).parameters.prompt, undefined);
  assert.equal(created(a).when, '2026-01-02T03:04:05.000Z');
  assert.equal(created(b).parameters.prompt, facts.prompt);
  assert.equal(created(b).parameters.revised_prompt, facts.drawnPrompt);
  const plainSize = (await hashed.sign(png, 'image/png', facts)).length;
  assert.ok(signedWithThumbnail.length > plainSize, `thumbnail ${signedWithThumbnail.length} B vs ${plainSize} B`);
  // Without a mark there is no soft binding.
  const unmarked = await read(await hashed.sign(png, 'image/png', { ...facts, watermark: null }));
  assert.ok(unmarked.present && !unmarked.assertions.some((x) => x.label === 'c2pa.soft-binding'));
});

test('a key that is not the certificate\'s, a key that is not P-256, and half a pair are refused at start', async () => {
  const other = createDevCertificateChain();
  await assert.rejects(
    createContentCredentialsSigner({ certPem: chain.certPem, keyPem: other.keyPem, software, includePrompt: false, thumbnail: false }),
    (err: Error) => err instanceof ProvenanceConfigError && /C2PA_KEY does not belong/.test(err.message),
  );
  const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  await assert.rejects(
    createContentCredentialsSigner({ certPem: chain.certPem, keyPem: rsa, software, includePrompt: false, thumbnail: false }),
    /C2PA_KEY must be an EC P-256 key for ES256, got rsa/,
  );
  await assert.rejects(
    createContentCredentialsSigner({ certPem: 'not a pem', keyPem: chain.keyPem, software, includePrompt: false, thumbnail: false }),
    /C2PA_CERT holds no PEM CERTIFICATE block/,
  );
  assert.throws(() => readConfig({ C2PA_CERT: chain.certPem }), (err: Error) => err instanceof ConfigError && /C2PA_KEY is set, the other is not|C2PA_CERT is set/.test(err.message));
  const expired = createDevCertificateChain({ now: new Date(Date.now() - 3 * 86_400_000), validDays: 1 });
  await assert.rejects(
    createContentCredentialsSigner({ certPem: expired.certPem, keyPem: expired.keyPem, software, includePrompt: false, thumbnail: false }),
    /C2PA_CERT is not valid now/,
  );
});

test('the soft-binding value is the 48 payload bits in hex, and only our algorithm is read back', () => {
  assert.equal(softBindingValue({ issuerId: 1, generationId: 0xa }), '00010000000a');
  assert.equal(payloadOfSoftBinding({ alg: 'com.example.other', blocks: [{ scope: {}, value: '00010000000a' }] }), null);
  assert.equal(payloadOfSoftBinding({ alg: 'org.qwen-image-server.watermark.tiled-ss.1', blocks: [{ scope: {}, value: 'zz' }] }), null);
});

test('the development certificate passes an X.509 check against its CA', () => {
  const leaf = new crypto.X509Certificate(chain.certPem);
  const ca = new crypto.X509Certificate(chain.caPem);
  assert.ok(leaf.verify(ca.publicKey));
  assert.ok(leaf.checkIssued(ca));
  assert.equal(leaf.ca, false);
  assert.equal(ca.ca, true);
  assert.ok(leaf.keyUsage?.includes('1.3.6.1.5.5.7.3.4'), 'emailProtection EKU');
});
