/**
 * The playground page in Debian's Chromium (playwright-core) against the started server with the bundled tiny
 * model: generate with progress and previews, the same locked seed twice, an edit from an uploaded file,
 * the server's size error next to the field, cancel of a held job, history restore and compare, the
 * watermark tab, phone width and dark mode. Screenshots go to test-output/playground/.
 */
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { startTestServer, MODEL, type TestServer } from '../helpers/server.ts';
import { CHROMIUM, downloadResult, generateOnPage, launchChromium, openPlayground, pacedEngine, sha256, shot } from './playground-helpers.ts';

let server: TestServer;
let browser: Browser;
let context: BrowserContext;
let page: Page;
const engine = pacedEngine();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'qis-playground-'));
/** Jobs made by earlier tests, for the history test. */
const made: Record<string, { jobId: string; prompt: string; seed: number }> = {};

before(async () => {
  assert.ok(fs.existsSync(CHROMIUM), 'Debian chromium is installed by scripts/setup.sh');
  server = await startTestServer({ WATERMARK_ISSUER_ID: '77' }, { wrapEngine: (e) => engine.wrap(e) });
  browser = await launchChromium();
  context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  await openPlayground(page, server.url);
});
after(async () => {
  await browser?.close();
  await server?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

// A test that fails half way must not leave the engine holding a job that every later test would queue behind.
afterEach(async () => {
  engine.state.mode = 'direct';
  engine.state.release?.();
  engine.state.release = null;
  for (const job of (await server.get('/v1/jobs?status=running')).json.data) await server.post(`/v1/jobs/${job.id}/cancel`, undefined);
});

async function resetForm(p: Page, prompt: string): Promise<void> {
  await p.getByLabel('Prompt', { exact: true }).fill(prompt);
  await p.getByLabel('Negative prompt').fill('');
}

test('the page is served by the server itself, its form limits are the request schema, and / and /docs link to it', async () => {
  const res = await fetch(`${server.url}/playground`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-security-policy') ?? '', /default-src 'self'/);
  const html = await res.text();
  assert.doesNotMatch(html, /(?:src|href)="(?:https?:)?\/\//, 'nothing loaded from elsewhere: every src and href is on this server');
  const js = await fetch(`${server.url}${/src="([^"]+)"/.exec(html)![1]}`);
  assert.equal(js.status, 200);
  assert.match(js.headers.get('content-type') ?? '', /javascript/);
  const again = await fetch(`${server.url}/playground/app.js`, { headers: { 'if-none-match': js.headers.get('etag')! } });
  assert.equal(again.status, 304);
  assert.ok((await fetch(`${server.url}/`).then((r) => r.text())).includes('href="/playground"'));
  assert.ok((await fetch(`${server.url}/docs`).then((r) => r.text())).includes('href="/playground"'));

  assert.equal(await page.getByLabel('Prompt', { exact: true }).inputValue(), '');
  for (const hidden of ['#panel-history', '#panel-watermark', '#preview', '#last-seed-row', '#result', '#snippets']) {
    assert.equal(await page.locator(hidden).isVisible(), false, `${hidden} is hidden at first`);
  }
  assert.equal(await page.locator('#prompt-count').textContent(), '0 / 2000 characters');
  await page.getByLabel('Prompt', { exact: true }).fill('a 🏠');
  assert.equal(await page.locator('#prompt-count').textContent(), '3 / 2000 characters', 'code points, as the server counts');
  const presets = await page.locator('#size-presets label').allTextContents();
  assert.deepEqual(presets, ['square_hd (1024×1024)', 'square (512×512)', 'portrait_4_3 (768×1024)', 'portrait_16_9 (576×1024)', 'landscape_4_3 (1024×768)', 'landscape_16_9 (1024×576)', 'custom']);
  assert.ok(await page.locator('#size-landscape_4_3').isChecked(), 'the schema default');
  // Snapping to the schema's bounds and step.
  await page.getByLabel('Width').fill('1000');
  await page.getByLabel('Width').press('Tab');
  assert.equal(await page.getByLabel('Width').inputValue(), '992');
  await page.getByLabel('Width').fill('5000');
  await page.getByLabel('Width').press('Tab');
  assert.equal(await page.getByLabel('Width').inputValue(), '1440');
  assert.ok(await page.locator('#size-custom').isChecked());
  assert.match((await page.locator('#enhance-hint').textContent())!, /Rewrite the prompt/);
  assert.match((await page.locator('#watermark-hint').textContent())!, /invisible watermark/);
  assert.match((await page.locator('#model-health').textContent())!, /healthy/i);
  assert.match((await page.locator('#cost-before').textContent())!, /1 × \$0\.0455 = \$0\.0455 \(91,000 credits\)/);
  await page.getByRole('spinbutton', { name: 'Images' }).fill('3');
  await page.getByRole('spinbutton', { name: 'Images' }).dispatchEvent('change');
  assert.match((await page.locator('#cost-before').textContent())!, /3 × \$0\.0455 = \$0\.1365 \(273,000 credits\)/);
  await page.getByRole('spinbutton', { name: 'Images' }).fill('1');
  await page.getByRole('spinbutton', { name: 'Images' }).dispatchEvent('change');
  // The key: in sessionStorage only, kept over a reload of the tab.
  const stored = await page.evaluate(() => ({ session: Object.keys(sessionStorage), local: Object.keys(localStorage) }));
  assert.deepEqual(stored, { session: ['qis.playground.apiKey'], local: [] });
  assert.match((await page.locator('#key-note').textContent())!, /sessionStorage/);
  await page.reload();
  await page.locator('body[data-key=ok]').waitFor();
  await shot(page, '01-form');
});

test('fill the form and generate: the queue, the steps and preview frames from the event stream, then the image with seed, cost and code', async () => {
  engine.state.mode = 'paced';
  await resetForm(page, 'a red house on the left and a green tree on the right at sunset');
  await page.getByLabel('square (512×512)').check();
  await page.getByLabel('Lock the seed').check();
  await page.getByLabel('Seed', { exact: true }).fill('42');
  // Record every state the output passes through: the steps go by faster than a screenshot.
  // (A string, not a function: tsx would wrap the function's inner names in a helper the page does not have.)
  await page.evaluate(`(() => {
    const log = [];
    window.__log = log;
    const output = document.getElementById('output');
    new MutationObserver(() => {
      const preview = document.getElementById('preview');
      const shown = !preview.hidden && preview.src.startsWith('data:image/') ? 'preview' : '';
      log.push(document.getElementById('status').textContent + '|' + document.getElementById('progress').value + '|' + shown);
    }).observe(output, { subtree: true, childList: true, characterData: true, attributes: true });
  })()`);
  const started = engine.nextStart();
  await page.getByRole('button', { name: 'Generate' }).click();
  // The page is following the stream once it shows the running state; only then does the engine go on.
  await page.locator('#status', { hasText: 'Running' }).waitFor();
  await started;
  engine.state.release!();
  // Each step is on screen for a few ms only: the log above is the evidence, and the cancel test below
  // screenshots a job held at step 10.
  await page.locator('body[data-last-status=succeeded]').waitFor();
  const log: string[] = await page.evaluate(() => (window as any).__log);
  assert.ok(log.some((l) => l.startsWith('Running')), log.join('\n'));
  for (const step of [1, 10, 20]) assert.ok(log.some((l) => l.startsWith(`Step ${step} of 20|${step}`)), `step ${step} shown with the bar at ${step}: ${log.join('\n')}`);
  assert.ok(log.some((l) => l.endsWith('|preview')), 'a preview frame was shown');

  const img = page.locator('#result-images img').first();
  await img.waitFor();
  assert.equal(await img.evaluate((el: HTMLImageElement) => el.complete && el.naturalWidth), 512);
  assert.equal(await page.locator('#preview').isVisible(), false, 'the preview gives way to the image');
  assert.equal(await page.locator('#last-seed-row').isVisible(), true);
  assert.equal(await page.locator('#result-seed').textContent(), '42');
  assert.equal(await page.locator('#cost-after').textContent(), '91,000 credits ($0.0455)');
  assert.match((await page.locator('#result-timing').textContent())!, /from submit to done/);
  assert.ok(await page.locator('#revised-prompt').isVisible(), 'enhance_prompt on: the revised prompt is shown');
  const jobId = await page.evaluate(() => document.body.dataset.jobId!);
  const job = await server.get(`/v1/jobs/${jobId}`);
  assert.equal(job.json.status, 'succeeded');
  assert.equal(await page.locator('#revised-prompt').textContent(), job.json.result.data[0].revised_prompt);
  made.first = { jobId, prompt: 'a red house on the left and a green tree on the right at sunset', seed: 42 };

  // Copy as: the exact body, in the seed's styles.
  const body = { model: MODEL, prompt: made.first.prompt, image_size: 'square', seed: 42, enhance_prompt: true, watermark: false };
  const curl = await page.locator('#snippet').textContent();
  assert.ok(curl!.includes(`-d '${JSON.stringify(body, null, 2)}'`), curl!);
  assert.ok(curl!.includes(`${server.url}/v1/images/generations`));
  await page.getByRole('tab', { name: 'Python' }).click();
  const python = (await page.locator('#snippet').textContent())!;
  assert.match(python, /^import requests\nimport json/);
  assert.match(python, /"enhance_prompt": True,\n\s+"watermark": False/);
  await page.getByRole('tab', { name: 'JavaScript' }).click();
  const js = (await page.locator('#snippet').textContent())!;
  assert.match(js, /await fetch\('http:\/\/127\.0\.0\.1:\d+\/v1\/images\/generations'/);
  assert.match(js, /image_size: 'square',\n\s+seed: 42/);
  engine.state.mode = 'direct';
  // The JavaScript snippet is runnable as written: the same request answers 200 with the same seed.
  const runnable = js.replace('<YOUR_API_KEY>', 'test-key-alpha').replace('console.log(JSON.stringify(data, null, 2));', 'return data;');
  const data = await new Function(`return (async () => { ${runnable} })();`)();
  assert.equal(data.data[0].seed, 42);
  await shot(page, '03-result');
  engine.state.mode = 'direct';
});

test('the same locked seed twice gives the same image, byte for byte; another seed does not', async () => {
  await resetForm(page, 'a blue circle in the centre on snow at night');
  await page.getByLabel('square (512×512)').check();
  await page.getByLabel('enhance_prompt').uncheck();
  await page.getByLabel('Lock the seed').check();
  await page.getByLabel('Seed', { exact: true }).fill('7');
  const first = await generateOnPage(page);
  assert.equal(first.status, 'succeeded');
  const a = await downloadResult(page);
  const second = await generateOnPage(page);
  assert.equal(second.status, 'succeeded');
  assert.notEqual(second.jobId, first.jobId);
  const b = await downloadResult(page);
  assert.equal(sha256(a), sha256(b));
  assert.equal((await sharp(a).metadata()).width, 512);
  made.seed7 = { jobId: second.jobId, prompt: 'a blue circle in the centre on snow at night', seed: 7 };

  // Unlocked: a random seed, shown afterwards, and "reuse" locks it.
  await page.getByLabel('Lock the seed').uncheck();
  const third = await generateOnPage(page);
  assert.equal(third.status, 'succeeded');
  const randomSeed = (await page.locator('#result-seed').textContent())!;
  assert.match(randomSeed, /^\d+$/);
  assert.equal(await page.locator('#last-seed').textContent(), randomSeed);
  assert.notEqual(sha256(await downloadResult(page)), sha256(a));
  await page.getByRole('button', { name: 'Reuse this seed' }).click();
  assert.ok(await page.getByLabel('Lock the seed').isChecked());
  assert.equal(await page.getByLabel('Seed', { exact: true }).inputValue(), randomSeed);
  await shot(page, '04-same-seed');
});

test('a reference image uploaded from a file is sent as a data: URI and produces an edit; thumbnails reorder and remove', async () => {
  const house = path.join(tmp, 'house.png');
  const other = path.join(tmp, 'other.png');
  await sharp({ create: { width: 320, height: 240, channels: 3, background: { r: 200, g: 40, b: 40 } } }).png().toFile(house);
  await sharp({ create: { width: 200, height: 200, channels: 3, background: { r: 40, g: 160, b: 40 } } }).png().toFile(other);
  await resetForm(page, 'make it night');
  await page.locator('#refs-file').setInputFiles([house, other]);
  await page.locator('#refs-list li').nth(1).waitFor();
  assert.deepEqual(await page.locator('#refs-list .hint').allTextContents(), ['1. house.png', '2. other.png']);
  await page.getByRole('button', { name: 'Move reference image 2 earlier' }).click();
  assert.deepEqual(await page.locator('#refs-list .hint').allTextContents(), ['1. other.png', '2. house.png']);
  await shot(page, '05-references');
  await page.getByRole('button', { name: 'Remove reference image 1' }).click();
  assert.deepEqual(await page.locator('#refs-list .hint').allTextContents(), ['1. house.png']);
  // Drag and drop, and paste: the events a browser fires, carrying a file.
  const b64 = fs.readFileSync(other).toString('base64');
  const withFile = (name: string) => `(() => { const bytes = Uint8Array.from(atob('${b64}'), (c) => c.charCodeAt(0));
    const dt = new DataTransfer(); dt.items.add(new File([bytes], '${name}', { type: 'image/png' })); return dt; })()`;
  await page.evaluate(`document.getElementById('refs-drop').dispatchEvent(new DragEvent('drop', { bubbles: true, cancelable: true, dataTransfer: ${withFile('dropped.png')} }))`);
  await page.evaluate(`document.body.dispatchEvent(new ClipboardEvent('paste', { bubbles: true, cancelable: true, clipboardData: ${withFile('pasted.png')} }))`);
  await page.locator('#refs-list li').nth(2).waitFor();
  assert.deepEqual(await page.locator('#refs-list .hint').allTextContents(), ['1. house.png', '2. dropped.png', '3. pasted.png']);
  await page.evaluate(`document.body.dispatchEvent(new ClipboardEvent('paste', { bubbles: true, cancelable: true, clipboardData: ${withFile('fourth.png')} }))`);
  await page.locator('#err-image_urls', { hasText: 'at most 3' }).waitFor();
  await page.getByRole('button', { name: 'Remove reference image 2' }).click();
  await page.getByRole('button', { name: 'Remove reference image 2' }).click();
  assert.deepEqual(await page.locator('#refs-list .hint').allTextContents(), ['1. house.png']);

  const edit = await generateOnPage(page);
  assert.equal(edit.status, 'succeeded');
  const job = await server.get(`/v1/jobs/${edit.jobId}`);
  assert.equal(job.json.input.reference_images, 1, 'the job is an edit of one reference image');
  await page.getByRole('tab', { name: 'curl' }).click();
  assert.match((await page.locator('#snippet').textContent())!, /"image_urls": \[\s+"data:image\/png;base64,iVBOR/);
  await page.locator('#result-images img').first().waitFor();
  await shot(page, '06-edit-result');
  await page.getByRole('button', { name: 'Remove reference image 1' }).click();
});

test('a custom size the server refuses shows its message next to the size field', async () => {
  // The client snaps to the schema's bounds, so it never sends 2048 by itself. This page gets a schema whose
  // width maximum is 4096 (as a page built against another server version would): it lets 2048 through,
  // and the server's own answer must then appear next to the field it names (image_size.width).
  const stale = await context.newPage();
  await stale.route('**/playground/config.json', async (route) => {
    const res = await route.fetch();
    const config = await res.json();
    const object = config.request_schema.properties.image_size.anyOf.find((b: any) => b.type === 'object');
    object.properties.width.maximum = 4096;
    await route.fulfill({ response: res, json: config });
  });
  await openPlayground(stale, server.url);
  await stale.getByLabel('Prompt', { exact: true }).fill('a yellow sun over the sea');
  await stale.getByLabel('Width').fill('2048');
  await stale.getByLabel('Width').press('Tab');
  await stale.getByLabel('Height').fill('512');
  await stale.getByLabel('Height').press('Tab');
  assert.equal(await stale.getByLabel('Width').inputValue(), '2048');
  const outcome = await generateOnPage(stale);
  assert.equal(outcome.status, 'refused');
  const expected = await server.post('/v1/images/generations', { model: MODEL, prompt: 'a yellow sun over the sea', image_size: { width: 2048, height: 512 } });
  assert.equal(expected.status, 400);
  assert.equal(expected.json.error.param, 'image_size.width');
  assert.equal(await stale.locator('#err-image_size').textContent(), expected.json.error.message);
  assert.equal(await stale.getByLabel('Width').getAttribute('aria-invalid'), 'true');
  await shot(stale, '07-size-error');
  await stale.close();
});

test('cancel stops a job that only ends when canceled', async () => {
  engine.state.mode = 'hold';
  const abortedBefore = engine.state.aborted;
  await resetForm(page, 'a brown mountain over the sea');
  await page.getByLabel('square (512×512)').check();
  await page.getByRole('button', { name: 'Generate' }).click();
  await page.locator('#status', { hasText: 'Step 10 of 20' }).waitFor();
  await page.locator('#preview:not([hidden])').waitFor();
  assert.equal(await page.locator('#progress').evaluate((el: HTMLProgressElement) => `${el.value}/${el.max}`), '10/20');
  await shot(page, '08-held-before-cancel');
  // A second tab's job waits behind the held one (one job at a time here) and shows its place in the queue.
  const second = await context.newPage();
  await openPlayground(second, server.url);
  await second.getByLabel('Prompt', { exact: true }).fill('a yellow sun over the sea');
  await second.getByLabel('square (512×512)').check();
  await second.getByRole('button', { name: 'Generate' }).click();
  await second.locator('#status', { hasText: 'Queued: next in line.' }).waitFor();
  await shot(second, '08b-queued-behind');
  engine.state.mode = 'direct';
  await page.getByRole('button', { name: 'Cancel' }).click();
  await page.locator('body[data-last-status=canceled]').waitFor();
  assert.match((await page.locator('#status').textContent())!, /^Canceled: job job_[0-9a-f-]+ was stopped/);
  const jobId = await page.evaluate(() => document.body.dataset.jobId!);
  const job = await server.get(`/v1/jobs/${jobId}`);
  assert.equal(job.json.status, 'canceled');
  assert.equal(engine.state.aborted, abortedBefore + 1, "the engine's run was aborted");
  assert.equal(await page.locator('#preview').isVisible(), false, 'the canceled job leaves no picture behind');
  assert.ok(await page.getByRole('button', { name: 'Generate' }).isEnabled());
  assert.ok(await page.getByRole('button', { name: 'Cancel' }).isDisabled());
  await shot(page, '09-canceled');
  // The queued job runs once the held one is gone.
  await second.locator('body[data-last-status=succeeded]').waitFor();
  await second.close();
  engine.state.mode = 'direct';
});

test('the history lists the jobs, restores a job\'s settings into the form, and compares two results side by side', async () => {
  // Change the form away from the job to restore.
  await resetForm(page, 'something else entirely');
  await page.getByLabel('square_hd (1024×1024)').check();
  await page.getByLabel('Lock the seed').uncheck();
  await page.getByLabel('enhance_prompt').check();
  await page.getByRole('tab', { name: 'History' }).click();
  assert.equal(await page.locator('#panel-generate').isVisible(), false, 'one panel at a time');
  const entry = page.locator(`#history-list li[data-job-id="${made.seed7!.jobId}"]`);
  await entry.waitFor();
  assert.ok((await page.locator('#history-list li').count()) >= 5);
  await page.locator(`#history-list li[data-job-id="${made.first!.jobId}"] .compare-pick`).check();
  await entry.locator('.compare-pick').check();
  await page.getByRole('button', { name: 'Compare the two selected' }).click();
  await page.locator('#compare-grid .compare-item').nth(1).locator('img').waitFor();
  assert.equal(await page.locator('#compare-grid .compare-item').count(), 2);
  assert.equal(await page.locator('#compare-grid .compare-item strong', { hasText: 'a blue circle' }).count(), 1, 'the prompts differ and are marked');
  await shot(page, '10-history-compare');

  await entry.getByRole('button', { name: /Restore the settings/ }).click();
  assert.equal(await page.getByRole('tab', { name: 'Generate' }).getAttribute('aria-selected'), 'true');
  assert.equal(await page.getByLabel('Prompt', { exact: true }).inputValue(), made.seed7!.prompt);
  assert.ok(await page.getByLabel('Lock the seed').isChecked());
  assert.equal(await page.getByLabel('Seed', { exact: true }).inputValue(), '7');
  assert.ok(await page.locator('#size-square').isChecked());
  assert.equal(await page.getByLabel('enhance_prompt').isChecked(), false);
  await shot(page, '11-history-restored');
  // The restored settings draw the same image again.
  const again = await generateOnPage(page);
  assert.equal(again.status, 'succeeded');
  const before = await server.get(`/v1/jobs/${made.seed7!.jobId}`);
  const [x, y] = await Promise.all([before.json.result.data[0].url, (await server.get(`/v1/jobs/${again.jobId}`)).json.result.data[0].url].map((u: string) => fetch(u).then(async (r) => Buffer.from(await r.arrayBuffer()))));
  assert.equal(sha256(x!), sha256(y!));
});

test('the watermark tab detects a marked image and finds nothing in an unmarked one', async () => {
  // The scene and seed that test/e2e/watermark.test.ts marks and detects, at the default size.
  await resetForm(page, 'a yellow sun over the sea');
  await page.getByLabel('landscape_4_3 (1024×768)').check();
  await page.getByLabel('Lock the seed').check();
  await page.getByLabel('Seed', { exact: true }).fill('5');
  await page.getByRole('checkbox', { name: 'watermark' }).check();
  const markedJob = await generateOnPage(page);
  assert.equal(markedJob.status, 'succeeded');
  assert.equal((await server.get(`/v1/jobs/${markedJob.jobId}`)).json.input.watermark, true);
  const marked = path.join(tmp, 'marked.png');
  fs.writeFileSync(marked, await downloadResult(page));
  await page.getByRole('checkbox', { name: 'watermark' }).uncheck();
  assert.equal((await generateOnPage(page)).status, 'succeeded');
  const plain = path.join(tmp, 'plain.png');
  fs.writeFileSync(plain, await downloadResult(page));

  await page.getByRole('tab', { name: 'Watermark check' }).click();
  await page.locator('#wm-file').setInputFiles(plain);
  await page.locator('#wm-result[data-detected=false]').waitFor();
  assert.equal(await page.locator('#wm-detected').textContent(), 'no mark found');
  await page.locator('#wm-file').setInputFiles(marked);
  await page.locator('#wm-result[data-detected=true]').waitFor();
  assert.match((await page.locator('#wm-detected').textContent())!, /^yes/);
  assert.match((await page.locator('#wm-confidence').textContent())!, /^\d+\.\d %$/);
  assert.match((await page.locator('#wm-payload').textContent())!, /^issuer 77, generation \d+$/);
  await shot(page, '12-watermark');
});

test('keyboard: arrow keys move between tabs; at 360 px nothing overflows; dark mode follows the system', async () => {
  await page.getByRole('tab', { name: 'Watermark check' }).focus();
  await page.keyboard.press('ArrowRight');
  assert.equal(await page.getByRole('tab', { name: 'Generate' }).getAttribute('aria-selected'), 'true');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'tab-generate');
  // Every form control has a label (an accessible name).
  const unnamed = await page.$$eval('#gen-form input:not([type=file]), #gen-form select, #gen-form textarea', (els) => els.filter((el) => !(el as HTMLInputElement).labels?.length && !el.getAttribute('aria-label')).map((el) => el.id));
  assert.deepEqual(unnamed, []);

  const phone = await browser.newContext({ viewport: { width: 360, height: 740 }, colorScheme: 'dark' });
  const small = await phone.newPage();
  await openPlayground(small, server.url);
  assert.ok(await small.evaluate(() => document.documentElement.scrollWidth <= 360), 'no horizontal scrolling at 360 px');
  const dark = await small.evaluate(() => getComputedStyle(document.body).backgroundColor);
  const light = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert.notEqual(dark, light);
  await shot(small, '13-phone-dark');
  await phone.close();
});
