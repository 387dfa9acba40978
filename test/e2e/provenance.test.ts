/**
 * Content credentials through the API: a server with C2PA_CERT/C2PA_KEY signs every image; POST /v1/images/verify
 * reads it back trusted (with the CA as C2PA_TRUST_ANCHORS) or valid (without), invalid once a pixel changed,
 * and traces a stripped copy through its invisible mark to the job, for its own key only. Without a
 * certificate nothing is signed and the start says so. Certificates are made here, at test time.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import pino from 'pino';
import sharp from 'sharp';
import { startTestServer, MODEL, OTHER_KEY, REPO_ROOT, TEST_KEY, type TestServer } from '../helpers/server.ts';
import { waitForStatus } from '../helpers/jobs.ts';
import { createDevCertificateChain } from '../../src/provenance/dev-certificate.ts';

const ISSUER = 77;
const PROMPT = 'a red house on the left and a green tree on the right at sunset';
const chain = createDevCertificateChain();
const certDir = fs.mkdtempSync(path.join(os.tmpdir(), 'qis-c2pa-'));
fs.writeFileSync(path.join(certDir, 'cert.pem'), chain.certPem);
fs.writeFileSync(path.join(certDir, 'ca.pem'), chain.caPem);

/** Log lines a server wrote, for the startup line. */
function capturingLogger(lines: string[]) {
  return pino({ level: 'info' }, new Writable({ write: (chunk, _enc, done) => (lines.push(...String(chunk).trim().split('\n')), done()) }));
}

let signing: TestServer;
let plain: TestServer;
const signingLog: string[] = [];
const plainLog: string[] = [];
before(async () => {
  signing = await startTestServer(
    // The certificate as a file path, the key inline: both forms of a PEM setting.
    { C2PA_CERT: path.join(certDir, 'cert.pem'), C2PA_KEY: chain.keyPem, C2PA_TRUST_ANCHORS: path.join(certDir, 'ca.pem'), WATERMARK_ISSUER_ID: String(ISSUER) },
    { logger: capturingLogger(signingLog) },
  );
  plain = await startTestServer({ WATERMARK_ISSUER_ID: String(ISSUER) }, { logger: capturingLogger(plainLog) });
});
after(async () => {
  await signing?.close();
  await plain?.close();
});

/** Submits asynchronously (to learn the job id), waits for the job's end through its events, fetches the image. */
async function generate(server: TestServer, body: Record<string, unknown>): Promise<{ jobId: string; png: Buffer; url: string }> {
  const submitted = await server.post('/v1/images/generations', { model: MODEL, prompt: PROMPT, seed: 11, enhance_prompt: false, ...body }, { prefer: 'respond-async' });
  assert.equal(submitted.status, 202, JSON.stringify(submitted.json));
  const job = await waitForStatus(server, submitted.json.id, 'succeeded');
  const url = job.result.data[0].url as string;
  return { jobId: job.id, url, png: Buffer.from(await (await fetch(url)).arrayBuffer()) };
}

const dataUri = (png: Buffer) => `data:image/png;base64,${png.toString('base64')}`;

function pngChunks(png: Buffer): Array<{ type: string; bytes: Buffer }> {
  const out: Array<{ type: string; bytes: Buffer }> = [];
  for (let o = 8; o < png.length; ) {
    const length = png.readUInt32BE(o);
    out.push({ type: png.toString('latin1', o + 4, o + 8), bytes: png.subarray(o, o + 12 + length) });
    o += 12 + length;
  }
  return out;
}

let marked: { jobId: string; png: Buffer; url: string };

test('startup says whether images are signed', () => {
  assert.ok(signingLog.some((l) => /content credentials: ON/.test(l) && l.includes('qwen-image-server C2PA signer (development)')), signingLog.join('\n'));
  assert.ok(plainLog.some((l) => /content credentials: OFF.*C2PA_CERT and C2PA_KEY/.test(l)), plainLog.join('\n'));
});

test('a signed, marked image reads back trusted with the anchor, with what made it and the soft binding', async () => {
  marked = await generate(signing, { watermark: true });
  assert.ok(pngChunks(marked.png).some((c) => c.type === 'caBX'), 'the PNG carries a C2PA manifest chunk');
  const res = await signing.post('/v1/images/verify', { image_url: marked.url });
  assert.equal(res.status, 200, JSON.stringify(res.json));
  const { manifest, watermark, soft_binding: softBinding, trace } = res.json;
  assert.equal(manifest.present, true);
  assert.equal(manifest.state, 'trusted', JSON.stringify(manifest.failures));
  assert.equal(manifest.reason, null);
  assert.equal(manifest.signature.common_name, 'qwen-image-server C2PA signer (development)');

  const actions = manifest.assertions.find((a: any) => a.label === 'c2pa.actions.v2').data.actions;
  const created = actions.find((a: any) => a.action === 'c2pa.created');
  assert.equal(created.digitalSourceType, 'http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia');
  assert.equal(created.softwareAgent.name, 'qwen-image-server');
  assert.match(created.softwareAgent.version, /^\d+\.\d+\.\d+/);
  assert.equal(created.parameters.model, MODEL);
  assert.equal(created.parameters.engine, 'builtin');
  assert.equal(created.parameters.engine_kind, 'builtin');
  assert.equal(created.parameters.prompt_sha256, crypto.createHash('sha256').update(PROMPT).digest('hex'));
  assert.equal(created.parameters.prompt, undefined, 'the prompt itself is not in the manifest unless C2PA_INCLUDE_PROMPT');
  assert.ok(!JSON.stringify(manifest).includes(PROMPT));
  assert.ok(Number.isFinite(Date.parse(created.when)));

  assert.equal(watermark.detected, true);
  assert.equal(watermark.payload.issuer_id, ISSUER);
  assert.deepEqual(softBinding.payload, watermark.payload);
  assert.equal(softBinding.matches_watermark, true);
  assert.equal(trace.status, 'yours');
  assert.equal(trace.generations[0].job_id, marked.jobId);
});

test('without the anchor the same manifest is valid but not trusted', async () => {
  // The plain server has no C2PA_TRUST_ANCHORS.
  const res = await plain.post('/v1/images/verify', { image_url: dataUri(marked.png) });
  assert.equal(res.status, 200);
  assert.equal(res.json.manifest.state, 'valid');
  assert.ok(res.json.manifest.failures.some((f: any) => f.code === 'signingCredential.untrusted'));
});

test('one changed pixel makes the manifest invalid, with the reason', async () => {
  const { data, info } = await sharp(marked.png).raw().toBuffer({ resolveWithObject: true });
  data[0] = data[0]! ^ 0x01;
  const reencoded = await sharp(data, { raw: { width: info.width, height: info.height, channels: info.channels } }).png().toBuffer();
  // The original manifest spliced into the changed image, where it was: after IHDR.
  const manifestChunk = pngChunks(marked.png).find((c) => c.type === 'caBX')!;
  const [ihdr, ...others] = pngChunks(reencoded);
  const tampered = Buffer.concat([reencoded.subarray(0, 8), ihdr!.bytes, manifestChunk.bytes, ...others.map((c) => c.bytes)]);
  const form = new FormData();
  form.append('image', new Blob([tampered], { type: 'image/png' }), 'tampered.png');
  const res = await fetch(`${signing.url}/v1/images/verify`, { method: 'POST', headers: { authorization: `Bearer ${TEST_KEY}` }, body: form });
  const body = (await res.json()) as any;
  assert.equal(res.status, 200);
  assert.equal(body.manifest.state, 'invalid');
  assert.match(body.manifest.reason, /assertion\.dataHash\.mismatch/);
});

test('a stripped copy has no manifest but is traced through its mark, to its own key only', async () => {
  const stripped = await sharp(marked.png).png().toBuffer();
  assert.ok(!pngChunks(stripped).some((c) => c.type === 'caBX' || c.type === 'tEXt' || c.type === 'iTXt'), 'sharp dropped the metadata');
  const own = await signing.post('/v1/images/verify', { image_url: dataUri(stripped) });
  assert.equal(own.status, 200);
  assert.deepEqual(own.json.manifest, { present: false });
  assert.equal(own.json.watermark.detected, true);
  assert.equal(own.json.soft_binding.matches_watermark, null);
  assert.equal(own.json.trace.status, 'yours');
  assert.equal(own.json.trace.generations[0].job_id, marked.jobId);
  assert.equal(own.json.trace.generations[0].key_id, undefined, 'key ids are for the operator only');

  const other = await signing.post('/v1/images/verify', { image_url: dataUri(stripped) }, { authorization: `Bearer ${OTHER_KEY}` });
  assert.equal(other.status, 200);
  assert.equal(other.json.trace.status, 'other_key');
  assert.deepEqual(other.json.trace.generations, []);
  assert.ok(!JSON.stringify(other.json).includes(marked.jobId), "another key learns nothing of the job");
});

test('no certificate: images carry no manifest', async () => {
  const { png, url } = await generate(plain, { watermark: false, seed: 12 });
  assert.ok(!pngChunks(png).some((c) => c.type === 'caBX'));
  const res = await plain.post('/v1/images/verify', { image_url: url });
  assert.equal(res.status, 200);
  assert.deepEqual(res.json.manifest, { present: false });
  assert.equal(res.json.watermark.detected, false);
  assert.equal(res.json.trace, null);
});

test('verify: bad input is a 4xx naming the field; auth is required', async () => {
  const missing = await signing.post('/v1/images/verify', {});
  assert.equal(missing.status, 400);
  assert.equal(missing.json.error.param, 'image_url');
  const notImage = await signing.post('/v1/images/verify', { image_url: `data:image/png;base64,${Buffer.from('nope').toString('base64')}` });
  assert.equal(notImage.status, 400);
  assert.equal(notImage.json.error.code, 'invalid_image');
  const extra = await signing.post('/v1/images/verify', { image_url: marked.url, strict: true });
  assert.equal(extra.status, 400);
  assert.equal(extra.json.error.code, 'unknown_field');
  assert.equal(extra.json.error.param, 'strict');
  const unauth = await signing.post('/v1/images/verify', { image_url: marked.url }, { authorization: '' });
  assert.equal(unauth.status, 401);
  const openapi = await signing.get('/openapi.json');
  assert.ok(openapi.json.paths['/v1/images/verify'].post, 'the endpoint is in the OpenAPI document');
});

test('the CLI makes a development pair and verifies a file offline, with the operator view of the trace', async () => {
  const run = (args: string[], env: Record<string, string>) =>
    promisify(execFile)(path.join(REPO_ROOT, 'node_modules/.bin/tsx'), [path.join(REPO_ROOT, 'src/cli/main.ts'), ...args], { env: { ...process.env, ...env } }).catch(
      (err: { stdout: string; stderr: string; code: number }) => ({ stdout: err.stdout, stderr: err.stderr, code: err.code }),
    );
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'qis-devcert-'));
  const made = await run(['provenance', 'dev-cert', '--out', out], {});
  assert.match(made.stdout, /C2PA_CERT=.*cert\.pem/);
  assert.equal(fs.statSync(path.join(out, 'key.pem')).mode & 0o777, 0o600);
  assert.ok(new crypto.X509Certificate(fs.readFileSync(path.join(out, 'cert.pem'))).checkPrivateKey(crypto.createPrivateKey(fs.readFileSync(path.join(out, 'key.pem')))));

  const file = path.join(out, 'stripped.png');
  fs.writeFileSync(file, await sharp(marked.png).png().toBuffer());
  const signedFile = path.join(out, 'signed.png');
  fs.writeFileSync(signedFile, marked.png);
  const env = { DATA_DIR: signing.dataDir, WATERMARK_ISSUER_ID: String(ISSUER), C2PA_TRUST_ANCHORS: path.join(certDir, 'ca.pem') };
  const signedReport = JSON.parse((await run(['provenance', 'verify', signedFile], env)).stdout);
  assert.equal(signedReport.manifest.state, 'trusted');
  const strippedReport = JSON.parse((await run(['provenance', 'verify', file], env)).stdout);
  assert.equal(strippedReport.manifest.present, false);
  assert.equal(strippedReport.trace.status, 'found');
  assert.equal(strippedReport.trace.generations[0].job_id, marked.jobId);
  assert.ok(strippedReport.trace.generations[0].key_id, 'the operator sees the key');
});
