/** Starts the real server in-process on a free loopback port, with a fresh DATA_DIR. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { readConfig } from '../../src/config/config.ts';
import { startServer, type RunningServer, type StartOptions } from '../../src/main.ts';

export const TEST_KEY = 'test-key-alpha';
export const OTHER_KEY = 'test-key-beta';
export const REPO_ROOT = path.resolve(import.meta.dirname, '../..');
export const TINY_MODEL_DIR = path.join(REPO_ROOT, 'test/fixtures/tiny-model');

export interface TestServer extends RunningServer {
  dataDir: string;
  post(pathname: string, body: unknown, headers?: Record<string, string>): Promise<{ status: number; headers: Headers; json: any }>;
  get(pathname: string, headers?: Record<string, string>): Promise<{ status: number; headers: Headers; json: any }>;
}

export async function startTestServer(env: Record<string, string> = {}, options: StartOptions = {}): Promise<TestServer> {
  const dataDir = env.DATA_DIR ?? fs.mkdtempSync(path.join(os.tmpdir(), 'qis-test-'));
  const config = readConfig(
    {
      PORT: '0',
      HOST: '127.0.0.1',
      DATA_DIR: dataDir,
      API_KEYS: `${TEST_KEY},${OTHER_KEY}`,
      ALLOW_PRIVATE_IMAGE_URLS: '1',
      BUILTIN_MODEL_DIR: TINY_MODEL_DIR,
      ORT_THREADS: '1',
      ...env,
    },
    REPO_ROOT,
  );
  const server = await startServer(config, { logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }), ...options });
  const call = async (method: string, pathname: string, body: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(server.url + pathname, {
      method,
      headers: { authorization: `Bearer ${TEST_KEY}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    let json: any = null;
    try {
      json = JSON.parse(text);
    } catch {
      json = text;
    }
    return { status: res.status, headers: res.headers, json };
  };
  return {
    ...server,
    dataDir,
    post: (p, body, headers) => call('POST', p, body, headers),
    get: (p, headers) => call('GET', p, undefined, headers),
  };
}

export const MODEL = 'alibaba/qwen-image-2-0';
