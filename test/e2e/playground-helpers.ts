/**
 * Shared by the playground's browser tests: Chromium through playwright-core, a screenshot folder, and an
 * engine wrapper whose pace the test sets (pass through, replay the real run's steps after the page is
 * watching, or stop half way and hold until canceled).
 */
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { Engine, EngineProgress } from '../../src/domain/types.ts';
import { REPO_ROOT, TEST_KEY } from '../helpers/server.ts';

export const CHROMIUM = '/usr/bin/chromium';
export const SHOTS_DIR = path.join(REPO_ROOT, 'test-output/playground');

export async function launchChromium(): Promise<Browser> {
  fs.mkdirSync(SHOTS_DIR, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

export async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(SHOTS_DIR, `${name}.png`), fullPage: true });
}

export function sha256(bytes: Buffer): string {
  return crypto.createHash('sha256').update(bytes).digest('hex');
}

/** Opens the page and gives it the key the way a person does; resolves once the key was accepted. */
export async function openPlayground(page: Page, baseUrl: string): Promise<void> {
  await page.goto(`${baseUrl}/playground`);
  await page.locator('body[data-ready=true]').waitFor();
  await page.getByLabel('Key', { exact: true }).fill(TEST_KEY);
  await page.getByRole('button', { name: 'Use this key' }).click();
  await page.locator('body[data-key=ok]').waitFor();
}

/** Clicks Generate and waits for the job's end on the page; returns the status it ended in and its id. */
export async function generateOnPage(page: Page): Promise<{ status: string; jobId: string }> {
  await page.getByRole('button', { name: 'Generate' }).click();
  const ended = page.locator('body[data-last-status=succeeded], body[data-last-status=failed], body[data-last-status=canceled], body[data-last-status=refused]');
  await ended.waitFor();
  return page.evaluate(() => ({ status: document.body.dataset.lastStatus!, jobId: document.body.dataset.jobId ?? '' }));
}

/** Saves the result through the page's download link and returns the file's bytes. */
export async function downloadResult(page: Page): Promise<Buffer> {
  const [download] = await Promise.all([page.waitForEvent('download'), page.locator('a.download').first().click()]);
  return fs.readFileSync((await download.path())!);
}

export type PaceMode = 'direct' | 'paced' | 'hold';

/**
 * direct: the real engine as it is. paced: waits for release(), then runs the real engine and replays its
 * progress reports one at a time (so a page that is watching sees each step and the previews), then returns
 * its image. hold: replays the first half of the steps, then waits for the job's abort signal and nothing else.
 */
export function pacedEngine() {
  const state = { mode: 'direct' as PaceMode, aborted: 0, started: 0, release: null as null | (() => void) };
  const startWaiters: Array<() => void> = [];
  const wrap = (engine: Engine): Engine => ({
    id: engine.id,
    kind: engine.kind,
    description: engine.description,
    load: () => engine.load(),
    health: () => engine.health(),
    capabilities: () => engine.capabilities(),
    close: () => engine.close(),
    async generate(request, signal, onProgress) {
      const mode = state.mode;
      state.started++;
      startWaiters.splice(0).forEach((w) => w());
      if (mode === 'direct') return engine.generate(request, signal, onProgress);
      const abortable = <T>(p: Promise<T>) =>
        new Promise<T>((resolve, reject) => {
          const onAbort = () => {
            state.aborted++;
            reject(Object.assign(new Error('aborted'), { name: 'AbortError' }));
          };
          if (signal.aborted) return onAbort();
          signal.addEventListener('abort', onAbort, { once: true });
          p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
        });
      if (mode === 'paced') await abortable(new Promise<void>((resolve) => (state.release = resolve)));
      const reports: EngineProgress[] = [];
      const result = await engine.generate(request, signal, (p) => reports.push(p));
      const replay = mode === 'hold' ? reports.slice(0, Math.ceil(reports.length / 2)) : reports;
      for (const report of replay) {
        onProgress?.(report);
        // Pacing only (the outcome is awaited through the page, never timed): gives the runner's preview
        // encoder, which drops frames while busy, the time to finish one between steps.
        await abortable(new Promise((r) => setTimeout(r, 40)));
      }
      if (mode === 'hold') await abortable(new Promise<never>(() => undefined));
      return result;
    },
  });
  return {
    state,
    wrap,
    /** Resolves once the engine was asked for a generation (counted from now). */
    nextStart: () => new Promise<void>((resolve) => startWaiters.push(resolve)),
  };
}
