/**
 * The CLI's HTTP client (`cli generate`, `cli jobs list`, `cli jobs cancel`) run as a child process against the real
 * server with the bundled tiny model: the saved image, the printed seed and cost against the job, the progress lines,
 * --json, listing, canceling a held job (by command and by Ctrl-C), bad flags and server errors.
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import type { Engine } from '../../src/domain/types.ts';
import { ApiError } from '../../src/domain/errors.ts';
import { startTestServer, MODEL, REPO_ROOT, TEST_KEY, type TestServer } from '../helpers/server.ts';
import { openEvents, waitForStatus } from '../helpers/jobs.ts';
import { ProgressBar } from '../../src/cli/progress-bar.ts';

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

interface Child {
  /** Resolves once stderr holds text matching `pattern`. */
  stderrMatches(pattern: RegExp): Promise<RegExpExecArray>;
  kill(signal: NodeJS.Signals): void;
  done: Promise<Run>;
}

function startCli(args: string[], env: Record<string, string> = {}, entry = 'src/cli/main.ts'): Child {
  const child = spawn(process.execPath, entry.endsWith('.ts') ? ['--import', 'tsx', entry, ...args] : [entry, ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, QIS_URL: '', QIS_API_KEY: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const watchers = new Set<() => void>();
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => {
    stderr += d;
    for (const w of [...watchers]) w();
  });
  const done = new Promise<Run>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return {
    done,
    kill: (signal) => child.kill(signal),
    stderrMatches: (pattern) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const m = pattern.exec(stderr);
          if (m) {
            watchers.delete(check);
            resolve(m);
          }
        };
        watchers.add(check);
        check();
        void done.then(() => {
          if (watchers.delete(check)) reject(new Error(`the CLI exited before stderr matched ${pattern}: ${stderr}`));
        });
      }),
  };
}

const runCli = (args: string[], env: Record<string, string> = {}, entry?: string) => startCli(args, env, entry).done;

function gatedEngine() {
  const state = { started: 0, onStart: [] as Array<() => void> };
  const wrap = (engine: Engine): Engine => ({
    id: engine.id,
    kind: engine.kind,
    description: engine.description,
    load: () => engine.load(),
    capabilities: () => engine.capabilities(),
    health: () => engine.health(),
    close: () => engine.close(),
    async generate(request, signal) {
      if (request.prompt.includes('refuse me')) throw new ApiError('backend_rejected', 'the backend refused this prompt', { param: 'prompt' });
      state.started++;
      for (const f of state.onStart.splice(0)) f();
      // Held until canceled.
      return new Promise((_resolve, reject) =>
        signal.addEventListener('abort', () => reject(Object.assign(new Error('aborted'), { name: 'AbortError' })), { once: true }),
      );
    },
  });
  return {
    wrap,
    startedAtLeast: (n: number) =>
      new Promise<void>((resolve) => {
        const check = () => (state.started >= n ? resolve() : state.onStart.push(check));
        check();
      }),
  };
}

describe('cli generate / jobs against a running server', () => {
  let server: TestServer;
  let env: Record<string, string>;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qis-cli-'));
  before(async () => {
    server = await startTestServer();
    env = { QIS_URL: server.url, QIS_API_KEY: TEST_KEY };
  });
  after(async () => {
    await server.close();
  });

  let firstJobId = '';

  test('generate saves the PNG at the requested size and prints the seed and cost of the job', async () => {
    const out = path.join(dir, 'house.png');
    const run = await runCli(['generate', '--prompt', 'a red house on the left', '--size', '640x512', '--seed', '42', '--out', out], env);
    assert.equal(run.code, 0, run.stderr);
    const meta = await sharp(out).metadata();
    assert.equal(meta.format, 'png');
    assert.equal(meta.width, 640);
    assert.equal(meta.height, 512);

    const jobId = /^job: (job_\S+)$/m.exec(run.stdout)?.[1];
    assert.ok(jobId, run.stdout);
    firstJobId = jobId;
    const job = (await server.get(`/v1/jobs/${jobId}`)).json;
    assert.equal(job.status, 'succeeded');
    assert.equal(job.input.seed, 42);
    const usage = job.result.meta.usage;
    assert.match(run.stdout, /^seed: 42$/m);
    assert.ok(run.stdout.includes(`cost: ${usage.credits_used} credits ($${usage.usd_spent})`), run.stdout);
    assert.ok(run.stdout.includes(`saved: ${out}`), run.stdout);
    // stderr is not a TTY here: one line per change, ending at the last step.
    const steps = run.stderr.split('\n').filter((l) => /^step \d+\/\d+$/.test(l));
    assert.ok(steps.length > 1, run.stderr);
    assert.equal(steps.at(-1), 'step 20/20');
    assert.doesNotMatch(run.stderr, /\r/);
  });

  test('--json prints one object with the job, seed, cost and path; a preset size and a reference image travel', async () => {
    const ref = path.join(dir, 'house.png');
    const out = path.join(dir, 'edit.png');
    const run = await runCli(
      ['generate', '--prompt', 'make it night', '--image', ref, '--size', 'square', '--negative', 'clouds', '--watermark', '--out', out, '--json'],
      env,
    );
    assert.equal(run.code, 0, run.stderr);
    const summary = JSON.parse(run.stdout);
    const job = (await server.get(`/v1/jobs/${summary.job_id}`)).json;
    assert.equal(job.status, 'succeeded');
    assert.equal(job.input.reference_images, 1);
    assert.equal(job.input.negative_prompt, 'clouds');
    assert.equal(job.input.watermark, true);
    assert.equal(summary.seed, job.result.data[0].seed);
    assert.equal(summary.credits_used, job.result.meta.usage.credits_used);
    assert.equal(summary.usd_spent, job.result.meta.usage.usd_spent);
    assert.equal(summary.path, out);
    const meta = await sharp(out).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height], ['png', 512, 512]);
  });

  test('the package bin runs the same CLI', async () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8'));
    const run = await runCli(['jobs', 'list', '--limit', '1', '--json'], env, pkg.bin['qwen-image-server']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(JSON.parse(run.stdout).data.length, 1);
  });

  test('jobs list shows the jobs, with --json the API page', async () => {
    const plain = await runCli(['jobs', 'list'], env);
    assert.equal(plain.code, 0, plain.stderr);
    assert.match(plain.stdout, new RegExp(`^${firstJobId}  succeeded .*640x512  seed 42  "a red house on the left"$`, 'm'));
    const json = await runCli(['jobs', 'list', '--status', 'succeeded', '--json'], env);
    assert.equal(json.code, 0, json.stderr);
    assert.ok(JSON.parse(json.stdout).data.some((j: any) => j.id === firstJobId));
  });

  test('a server refusal prints its message and field, exit 1', async () => {
    const big = await runCli(['generate', '--prompt', 'a tree', '--size', '4096x4096'], env);
    assert.equal(big.code, 1);
    assert.match(big.stderr, /^error: .*\(field: image_size[^)]*\)/m);
    const badKey = await runCli(['jobs', 'list'], { ...env, QIS_API_KEY: 'nope' });
    assert.equal(badKey.code, 1);
    assert.match(badKey.stderr, /^error: .*invalid_api_key, HTTP 401/m);
    const badStatus = await runCli(['jobs', 'list', '--status', 'lost'], env);
    assert.equal(badStatus.code, 1);
    assert.match(badStatus.stderr, /\(field: status\)/);
    const finished = await runCli(['jobs', 'cancel', firstJobId], env);
    assert.equal(finished.code, 1);
    assert.match(finished.stderr, /already succeeded.*\(field: id\).*job_finished/);
  });

  test('bad flags exit 2 naming the flag', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['generate', '--prompt', 'x', '--colour', 'red'], /unknown flag --colour/],
      [['generate', '--prompt', 'x', '--seed', 'seven'], /--seed must be an integer/],
      [['generate', '--prompt', 'x', '--size', 'huge'], /--size must be one of/],
      [['generate', '--seed', '1'], /--prompt is required/],
      [['generate', '--prompt', 'x', '--out', 'a.gif'], /--out must end in/],
      [['generate', '--prompt', 'x', '--image', path.join(dir, 'missing.png')], /--image .*no such file/],
      [['generate', '--prompt'], /--prompt needs a value/],
      [['jobs', 'list', '--limit', 'ten'], /--limit must be an integer/],
      [['jobs', 'cancel'], /jobs cancel takes one job id/],
    ];
    for (const [args, message] of cases) {
      const run = await runCli(args, env);
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, message);
    }
    const noKey = await runCli(['jobs', 'list'], { QIS_URL: server.url });
    assert.equal(noKey.code, 2);
    assert.match(noKey.stderr, /--key is missing/);
  });
});

describe('cli against a held job', () => {
  let server: TestServer;
  let env: Record<string, string>;
  const gate = gatedEngine();
  before(async () => {
    server = await startTestServer({ ENGINE_CONCURRENCY: '1', ENGINE_MAX_QUEUE: '4' }, { wrapEngine: gate.wrap });
    env = { QIS_URL: server.url, QIS_API_KEY: TEST_KEY };
  });
  after(async () => {
    await server.close();
  });

  test('jobs cancel cancels a running job', async () => {
    const submitted = await server.post('/v1/images/generations', { model: MODEL, prompt: 'a tree', image_size: 'square' }, { prefer: 'respond-async' });
    assert.equal(submitted.status, 202);
    await gate.startedAtLeast(1);
    const run = await runCli(['jobs', 'cancel', submitted.json.id], env);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, `${submitted.json.id} canceled\n`);
    await waitForStatus(server, submitted.json.id, 'canceled');
  });

  test('a job that fails prints the error and its field, exit 1; --json says so on stdout', async () => {
    const run = await runCli(['generate', '--prompt', 'please refuse me', '--json'], env);
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /failed: error: the backend refused this prompt \(field: prompt\) \[backend_rejected\]/);
    const summary = JSON.parse(run.stdout);
    assert.equal(summary.status, 'failed');
    assert.equal((await server.get(`/v1/jobs/${summary.job_id}`)).json.status, 'failed');
  });

  test('generate shows the queue position, and Ctrl-C cancels its job before exiting', async () => {
    // One job holds the engine, so the CLI's job waits in the queue behind it.
    const holder = await server.post('/v1/images/generations', { model: MODEL, prompt: 'a tree', image_size: 'square' }, { prefer: 'respond-async' });
    const holderEvents = await openEvents(`${server.url}/v1/jobs/${holder.json.id}/events`, TEST_KEY);
    await holderEvents.next((e) => e.event === 'running');
    holderEvents.close();

    const child = startCli(['generate', '--prompt', 'a sun', '--size', 'square'], env);
    const jobId = (await child.stderrMatches(/^job (job_\S+) submitted$/m))[1]!;
    await child.stderrMatches(/^queued: next in line$/m);
    child.kill('SIGINT');
    const run = await child.done;
    assert.equal(run.code, 130, run.stderr);
    assert.match(run.stderr, new RegExp(`job ${jobId} canceled`));
    assert.equal((await server.get(`/v1/jobs/${jobId}`)).json.status, 'canceled');

    const rest = await server.post(`/v1/jobs/${holder.json.id}/cancel`, undefined);
    assert.equal(rest.json.status, 'canceled');
  });
});

test('on a TTY the progress bar redraws one line in place and ends it before other output', () => {
  let written = '';
  const bar = new ProgressBar({ isTTY: true, columns: 80, write: (s: string) => (written += s) });
  bar.update({ phase: 'queued', queuePosition: 2 });
  bar.update({ phase: 'queued', queuePosition: 2 }); // no change, no redraw
  bar.update({ phase: 'running', step: 10, steps: 20 });
  bar.update({ phase: 'running', step: 20, steps: 20 });
  bar.finish();
  const frames = written.split('\r\x1b[2K').filter(Boolean);
  assert.deepEqual(frames, [
    '[........................] queued: 2 ahead',
    '[############............] step 10/20',
    '[########################] step 20/20\n',
  ]);
});
