/**
 * An S3 endpoint for the tests: the npm package s3rver, started as its own process on a free loopback port
 * with its data in a temporary folder and one bucket made at start, and stopped (folder removed) afterwards.
 *
 * A child process rather than s3rver in the test's own process, for two reasons: s3rver 3.7 encrypts its
 * ListObjectsV2 continuation tokens with DES, which Node 17+ (OpenSSL 3) refuses unless the whole process runs
 * with `--openssl-legacy-provider`, a flag the server under test must not run with; and a separate process is
 * what a bucket is in production, reached over TCP only, its work off the test's event loop.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { S3Client } from '@aws-sdk/client-s3';

/** s3rver's one account (its README: "accessKeyId: S3RVER, secretAccessKey: S3RVER"). */
export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
export const S3RVER_REGION = 'us-east-1';

export interface S3Endpoint {
  /** e.g. http://127.0.0.1:41234 */
  endpoint: string;
  bucket: string;
  /** s3rver's data folder: one folder per bucket, the objects as files. */
  directory: string;
  /** A client of its own, to look at the bucket independently of the store under test. */
  client: S3Client;
  /** The environment a server needs to use this bucket (credentials through the SDK's default chain). */
  env(prefix: string, extra?: Record<string, string>): Record<string, string>;
  stop(): Promise<void>;
}

const require = createRequire(import.meta.url);

export async function startS3rver(options: { bucket?: string } = {}): Promise<S3Endpoint> {
  const bucket = options.bucket ?? 'qis-test-bucket';
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'qis-s3rver-'));
  const bin = path.join(path.dirname(require.resolve('s3rver/package.json')), 'bin/s3rver.js');
  const child = spawn(
    process.execPath,
    ['--openssl-legacy-provider', bin, '--directory', directory, '--address', '127.0.0.1', '--port', '0', '--silent', '--configure-bucket', bucket],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      // The bin prints this once the bucket is made and the socket listens.
      const m = /S3rver listening on [^:]+:(\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.once('error', reject);
    child.once('exit', (code, signal) => reject(new Error(`s3rver exited before listening (code ${code}, signal ${signal}): ${err}${out}`)));
  });
  const endpoint = `http://127.0.0.1:${port}`;
  const client = new S3Client({ endpoint, region: S3RVER_REGION, forcePathStyle: true, credentials: S3RVER_CREDENTIALS, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
  return {
    endpoint,
    bucket,
    directory,
    client,
    env: (prefix, extra = {}) => ({
      BLOB_STORE: `s3://${bucket}/${prefix}`,
      S3_ENDPOINT: endpoint,
      S3_REGION: S3RVER_REGION,
      ...extra,
    }),
    async stop() {
      client.destroy();
      await stopChild(child);
      process.off('exit', killOnExit);
      fs.rmSync(directory, { recursive: true, force: true });
    },
  };
}

/**
 * Puts s3rver's key into AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, where the SDK's default credential chain
 * of a server started in this process finds it, as it would an operator's; returns the function that restores
 * the variables as they were.
 */
export function useS3rverCredentialsInEnv(): () => void {
  const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
  process.env.AWS_ACCESS_KEY_ID = S3RVER_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = S3RVER_CREDENTIALS.secretAccessKey;
  return () => {
    for (const [name, value] of [['AWS_ACCESS_KEY_ID', saved.id], ['AWS_SECRET_ACCESS_KEY', saved.secret]] as const) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  };
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  await exited;
}
