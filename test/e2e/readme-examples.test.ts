/**
 * The README's openai-node and AI SDK snippets, taken from README.md as they are and run with node
 * against a started server: only the base URL, the key and nothing else are changed. Each runs in
 * its own directory (under node_modules/.cache, so that `import 'openai'` resolves to this
 * project's packages) holding the input files the snippet names.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { startTestServer, REPO_ROOT, TEST_KEY, type TestServer } from '../helpers/server.ts';
import { makeTestImages } from '../helpers/image-server.ts';
import { readPngText } from '../../src/images/png.ts';
import { EXAMPLES } from '../../scripts/example-images.ts';

const run = promisify(execFile);
let server: TestServer;
before(async () => {
  server = await startTestServer();
});
after(async () => {
  await server.close();
});

function snippet(name: string): string {
  const readme = fs.readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
  const m = new RegExp(`<!-- example: ${name} -->\\n\`\`\`js\\n([\\s\\S]*?)\\n\`\`\``).exec(readme);
  assert.ok(m, `README has the ${name} example`);
  const code = m[1]!.replaceAll('http://127.0.0.1:8080', server.url).replaceAll('sk-local-1', TEST_KEY);
  assert.ok(!code.includes('8080'), 'every address was replaced');
  return code;
}

async function runSnippet(name: string): Promise<{ dir: string; stdout: string }> {
  const cache = path.join(REPO_ROOT, 'node_modules', '.cache');
  fs.mkdirSync(cache, { recursive: true });
  const dir = fs.mkdtempSync(path.join(cache, `readme-${name}-`));
  const images = await makeTestImages();
  fs.writeFileSync(path.join(dir, 'house.png'), images['red.png']!);
  fs.writeFileSync(path.join(dir, 'tree.png'), await sharp(images['red.png']!).negate().toBuffer());
  const file = path.join(dir, 'example.mjs');
  fs.writeFileSync(file, snippet(name));
  const { stdout } = await run(process.execPath, [file], { cwd: dir, timeout: 120_000, maxBuffer: 16 * 1024 * 1024 });
  return { dir, stdout };
}

async function formatOf(file: string): Promise<[string | undefined, number | undefined, number | undefined]> {
  const meta = await sharp(fs.readFileSync(file)).metadata();
  return [meta.format, meta.width, meta.height];
}

test('README openai-node: generate with size, n and the seed fields prints two URLs with seeds 42 and 43', async () => {
  const { dir, stdout } = await runSnippet('openai-generate');
  const lines = stdout.trim().split('\n').map((l) => l.split(' '));
  assert.deepEqual(lines.map((l) => l[1]), ['42', '43']);
  for (const [url] of lines) {
    const png = Buffer.from(await (await fetch(url!)).arrayBuffer());
    assert.deepEqual((await sharp(png).metadata()).width, 1024);
  }
  fs.rmSync(dir, { recursive: true });
});

test('README openai-node: a two-image edit to WebP, and a stream with two partial images', async () => {
  const { dir } = await runSnippet('openai-edit-and-stream');
  assert.deepEqual(await formatOf(path.join(dir, 'edited.webp')), ['webp', 1024, 768]);
  assert.deepEqual(await formatOf(path.join(dir, 'sun-partial-0.png')), ['png', 1024, 768]);
  assert.deepEqual(await formatOf(path.join(dir, 'sun-partial-1.png')), ['png', 1024, 768]);
  assert.deepEqual(await formatOf(path.join(dir, 'sun.png')), ['png', 1024, 768]);
  fs.rmSync(dir, { recursive: true });
});

test('README AI SDK: both providers generate, and an edit goes through /images/edits', async () => {
  const { dir } = await runSnippet('ai-sdk');
  for (const i of [0, 1]) {
    const file = path.join(dir, `circle-${i}.png`);
    assert.deepEqual(await formatOf(file), ['png', 1024, 1024]);
    assert.equal(readPngText(fs.readFileSync(file)).Seed, String(7 + i));
  }
  assert.deepEqual(await formatOf(path.join(dir, 'night.png')), ['png', 1024, 768]);
  assert.deepEqual(await formatOf(path.join(dir, 'mountain.jpg')), ['jpeg', 768, 512]);
  fs.rmSync(dir, { recursive: true });
});

test('the README shows the example images scripts/example-images.ts writes, as the API made them', async () => {
  const readme = fs.readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
  for (const example of EXAMPLES) {
    const rel = `docs/images/${example.file}`;
    assert.ok(readme.includes(`](${rel})`), `README links ${rel}`);
    const file = path.join(REPO_ROOT, rel);
    const meta = await sharp(file).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height], ['png', 1024, 768], rel);
    const text = readPngText(fs.readFileSync(file));
    // 'Original prompt' is written when the prompt was rewritten (enhance_prompt), else 'Prompt' is the prompt as sent
    assert.equal(text['Original prompt'] ?? text.Prompt, example.body.prompt, `${rel} was drawn from the script's prompt`);
    assert.equal(text.Seed, String(example.body.seed), `${rel} seed`);
  }
});
