/** The /docs page, rendered by Debian's Chromium (playwright-core), lists the request fields from the schema. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { startTestServer, type TestServer } from '../helpers/server.ts';

const CHROMIUM = '/usr/bin/chromium';
let server: TestServer;
let browser: Browser;

before(async () => {
  assert.ok(fs.existsSync(CHROMIUM), 'Debian chromium is installed by scripts/setup.sh');
  server = await startTestServer();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
});
after(async () => {
  await browser?.close();
  await server?.close();
});

test('the docs page renders every request field with its rules, from /openapi.json', async () => {
  const page = await browser.newPage();
  await page.goto(`${server.url}/docs`);
  await page.waitForSelector('#fields tbody tr');
  const rows = await page.$$eval('#fields tbody tr', (trs) => trs.map((tr) => Array.from(tr.querySelectorAll('td')).map((td) => td.textContent ?? '')));
  const byField = Object.fromEntries(rows.map((r) => [r[0]!.replace(' (required)', ''), r]));
  for (const field of ['model', 'prompt', 'image_urls', 'image_size', 'enhance_prompt', 'negative_prompt', 'seed', 'watermark', 'response_format', 'size', 'n', 'output_format', 'output_compression', 'quality', 'background', 'moderation', 'style', 'user', 'stream', 'partial_images']) {
    assert.ok(byField[field], `row for ${field}`);
  }
  assert.match(byField.prompt![0]!, /required/);
  assert.match(byField.prompt![1]!, /≤ 2000 chars/);
  assert.match(byField.seed![1]!, /≤ 2147483647/);
  assert.match(byField.image_size![1]!, /multiple of 32/);
  assert.match(byField.image_size![2]!, /landscape_4_3/);
  const endpoints = await page.$$eval('#paths li', (lis) => lis.map((li) => li.textContent ?? ''));
  assert.ok(endpoints.some((e) => e.includes('POST /v1/images/generations')));
  assert.ok(endpoints.some((e) => e.includes('POST /v1/images/edits')));
  const editRows = await page.$$eval('#edit-fields tbody tr', (trs) => trs.map((tr) => Array.from(tr.querySelectorAll('td')).map((td) => td.textContent ?? '')));
  const editFields = Object.fromEntries(editRows.map((r) => [r[0]!.replace(' (required)', ''), r]));
  assert.match(editFields.image![1]!, /file.*or.*files, 1–3 items/);
  assert.ok(editFields.mask && editFields.size && editFields.seed && !editFields.image_urls, 'edit rows: the files, the other fields, no image_urls');
  await page.close();
});
