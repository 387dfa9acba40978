/**
 * `cli provenance verify` reads the ledger where the server keeps it: a server process on a real PostgreSQL
 * (DATABASE_URL, with REDIS_URL for its queue) makes a marked image, and the CLI, a real child process given the
 * same DATABASE_URL, traces a stripped copy of it to its job and key; the report names the database but never its
 * password. On SQLite, a DATA_DIR without a database file stays without one.
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { MODEL, REPO_ROOT, TEST_KEY } from '../helpers/server.ts';
import { killSpawnedServers, serverProcessEnv, startServerProcess, type ServerProcess } from '../helpers/server-process.ts';
import { waitUntil } from '../helpers/wait-until.ts';
import { startPostgres, type TestPostgres } from '../helpers/postgres.ts';
import { startRedis, type TestRedis } from '../helpers/redis.ts';

const ISSUER = 91;
/** Trust authentication ignores it, so it only shows whether the CLI ever prints the URL's password. */
const PASSWORD = 'pw-never-printed-3f9c';
const auth = { authorization: `Bearer ${TEST_KEY}` };

/** The CLI as an operator runs it, with only the environment given here; `code` is its exit status. */
function verify(file: string, env: Record<string, string>): Promise<{ stdout: string; stderr: string; code: number }> {
  return promisify(execFile)(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'src/cli/main.ts'), 'provenance', 'verify', file], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
  }).then(
    ({ stdout, stderr }) => ({ stdout, stderr, code: 0 }),
    (err: { stdout: string; stderr: string; code: number }) => ({ stdout: err.stdout, stderr: err.stderr, code: err.code }),
  );
}

async function getJson(url: string) {
  const res = await fetch(url, { headers: auth });
  return { status: res.status, json: (await res.json()) as any };
}

describe('verify on Postgres', () => {
  let pg: TestPostgres;
  let redis: TestRedis;
  let server: ServerProcess;
  let databaseUrl: string;
  let dataDir: string;

  before(async () => {
    [pg, redis] = await Promise.all([startPostgres(), startRedis()]);
    const url = new URL(await pg.createDatabase('prov'));
    url.password = PASSWORD;
    databaseUrl = url.toString();
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'qis-prov-pg-'));
    server = await startServerProcess(
      serverProcessEnv(dataDir, { DATABASE_URL: databaseUrl, REDIS_URL: redis.url, KEY_HASH_SECRET: 'provenance-postgres-key-hash-secret', WATERMARK_ISSUER_ID: String(ISSUER) }),
    );
  });

  after(async () => {
    killSpawnedServers();
    await server?.exited;
    await Promise.all([redis?.stop(), pg?.stop()]);
  });

  test('a stripped copy of an image made on Postgres is traced to its job and key, and no password is printed', async () => {
    const submitted = await fetch(`${server.url}/v1/images/generations`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json', prefer: 'respond-async' },
      body: JSON.stringify({ model: MODEL, prompt: 'a lighthouse on a cliff at dawn', seed: 5, enhance_prompt: false, watermark: true }),
    });
    assert.equal(submitted.status, 202);
    const jobId = ((await submitted.json()) as { id: string }).id;
    let job: any;
    await waitUntil(async () => {
      job = (await getJson(`${server.url}/v1/jobs/${jobId}`)).json;
      if (job.status === 'failed' || job.status === 'canceled') throw new Error(`job ${jobId} ended ${job.status}: ${JSON.stringify(job.error)}`);
      return job.status === 'succeeded';
    }, `job ${jobId} to succeed`);
    const png = Buffer.from(await (await fetch(job.result.data[0].url)).arrayBuffer());
    const keyId = (await getJson(`${server.url}/v1/usage`)).json.key_id as string;
    assert.ok(keyId);
    assert.ok(!fs.existsSync(path.join(dataDir, 'server.sqlite')), 'the server keeps no SQLite ledger on Postgres');

    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'qis-prov-pg-file-')), 'stripped.png');
    fs.writeFileSync(file, await sharp(png).png().toBuffer());
    // The same DATA_DIR as the server: a CLI that looked only for DATA_DIR/server.sqlite would find no ledger.
    const run = await verify(file, { DATABASE_URL: databaseUrl, DATA_DIR: dataDir, WATERMARK_ISSUER_ID: String(ISSUER) });
    assert.equal(run.code, 0, run.stderr);
    const report = JSON.parse(run.stdout);
    assert.equal(report.watermark.detected, true);
    assert.equal(report.watermark.payload.issuer_id, ISSUER);
    assert.equal(report.trace.status, 'found', run.stdout);
    assert.equal(report.trace.generations.length, 1);
    assert.equal(report.trace.generations[0].job_id, jobId);
    assert.equal(report.trace.generations[0].key_id, keyId);
    const { hostname, port, pathname } = new URL(databaseUrl);
    assert.equal(report.ledger, `postgres://postgres@${hostname}:${port}${pathname}`);
    assert.ok(!`${run.stdout}${run.stderr}`.includes(PASSWORD), 'the password is not printed');
    assert.ok(!fs.existsSync(path.join(dataDir, 'server.sqlite')), 'verify on Postgres makes no SQLite file');
  });
});

test('on SQLite, verify of a DATA_DIR without a database reports no ledger and creates no file', async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'qis-prov-empty-'));
  const file = path.join(dataDir, 'plain.png');
  fs.writeFileSync(file, await sharp({ create: { width: 64, height: 64, channels: 3, background: '#808080' } }).png().toBuffer());
  const run = await verify(file, { DATA_DIR: dataDir });
  assert.equal(run.code, 1, 'neither a manifest nor a mark');
  const report = JSON.parse(run.stdout);
  assert.equal(report.ledger, null);
  assert.equal(report.watermark.detected, false);
  assert.deepEqual(fs.readdirSync(dataDir), ['plain.png'], 'no server.sqlite, no key-hash-secret');
});
