/**
 * GET /playground: a page to try every field of the API in a browser, served by this server alone (no CDN).
 *
 * The page's source is TypeScript in src/web/playground/, bundled with esbuild (a declared dependency, the same one
 * tsx compiles with) in memory on the first request and kept for the life of the app: a server nobody browses never
 * pays for it, and a fresh clone needs no build step. GET /playground/config.json hands the page, before any
 * key is entered, what it needs to draw the form: the very JSON Schema object that validates requests, the
 * size presets with their pixels, the prices per model and the credits per USD. None of it is secret (the
 * defaults are in the README), and serving it unauthenticated lets the form render before the key is asked.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import crypto from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { generationRequestSchema } from '../../contracts/validate-generation.ts';
import { DEFAULT_IMAGE_SIZE, IMAGE_SIZE_PRESETS } from '../../contracts/sizes.ts';

export interface PlaygroundRouteDeps {
  /** USD per image, per model (PRICES_USD). */
  pricesUsd: Record<string, number>;
  creditsPerUsd: number;
  /** Largest n (MAX_IMAGES_PER_REQUEST): the schema leaves its maximum to the server's setting. */
  maxImagesPerRequest: number;
  /** Where the page's source lives; tests may point elsewhere. */
  sourceDir?: string;
}

interface Asset {
  body: string;
  type: string;
  etag: string;
}

interface Bundle {
  html: Asset;
  js: Asset;
  css: Asset;
  buildMs: number;
}

const SOURCE_DIR = path.resolve(import.meta.dirname, '../../web/playground');

/**
 * Same-origin only: the page talks to this server and nothing else. img-src also allows http(s) because a
 * reference image given by URL is shown as a thumbnail straight from where it lives; previews are data: URIs.
 */
const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob: http: https:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** GET /: nothing was served here before; a person who opens the server's address finds the two pages. */
const INDEX = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark"><title>qwen-image-server</title></head>
<body style="font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem">
<h1>qwen-image-server</h1>
<ul><li><a href="/playground">Playground</a>: try every field in the browser, watch the image form</li>
<li><a href="/docs">API reference</a> (<a href="/openapi.json">OpenAPI document</a>)</li>
<li><a href="/healthz">Health</a></li></ul>
</body></html>`;

function asset(body: string, type: string): Asset {
  return { body, type, etag: `"${crypto.createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` };
}

async function buildBundle(sourceDir: string): Promise<Bundle> {
  const started = performance.now();
  // Imported here, not at the top: only a server whose playground is opened loads esbuild (and its child process).
  const esbuild = await import('esbuild');
  const result = await esbuild.build({
    entryPoints: { app: path.join(sourceDir, 'main.ts'), style: path.join(sourceDir, 'styles.css') },
    bundle: true,
    write: false,
    minify: true,
    format: 'esm',
    // Browsers of the last few years: top-level await, optional chaining, CSS nesting not used.
    target: ['chrome100', 'firefox100', 'safari15'],
    outdir: '/playground',
    legalComments: 'none',
    logLevel: 'silent',
  });
  const out = (ext: string) => {
    const file = result.outputFiles.find((f) => f.path.endsWith(ext));
    if (!file) throw new Error(`esbuild produced no ${ext} file`);
    return file.text;
  };
  const js = asset(out('.js'), 'text/javascript; charset=utf-8');
  const css = asset(out('.css'), 'text/css; charset=utf-8');
  const template = await fs.readFile(path.join(sourceDir, 'index.html'), 'utf8');
  // The asset URLs carry their content hash, so a browser never runs a stale script against a new page.
  const html = asset(
    template.replace('%APP_JS%', `/playground/app.js?v=${js.etag.slice(1, 11)}`).replace('%APP_CSS%', `/playground/app.css?v=${css.etag.slice(1, 11)}`),
    'text/html; charset=utf-8',
  );
  return { html, js, css, buildMs: Math.round(performance.now() - started) };
}

function sendAsset(request: FastifyRequest, reply: FastifyReply, a: Asset): FastifyReply {
  reply.header('etag', a.etag).header('cache-control', 'no-cache').header('x-content-type-options', 'nosniff');
  if (request.headers['if-none-match'] === a.etag) return reply.code(304).send();
  return reply.type(a.type).send(a.body);
}

export function registerPlaygroundRoutes(app: FastifyInstance, deps: PlaygroundRouteDeps): void {
  const sourceDir = deps.sourceDir ?? SOURCE_DIR;
  // One build per app, shared by concurrent first requests; a failed build is tried again by the next request.
  let building: Promise<Bundle> | null = null;
  const bundle = (request: FastifyRequest): Promise<Bundle> => {
    if (!building) {
      building = buildBundle(sourceDir).then(
        (b) => {
          request.log.info({ buildMs: b.buildMs, jsBytes: Buffer.byteLength(b.js.body), cssBytes: Buffer.byteLength(b.css.body) }, 'playground bundled');
          return b;
        },
        (err: Error) => {
          building = null;
          request.log.error({ err }, 'playground bundle failed');
          throw err;
        },
      );
    }
    return building;
  };

  const config = {
    request_schema: generationRequestSchema,
    size_presets: IMAGE_SIZE_PRESETS,
    default_size: DEFAULT_IMAGE_SIZE,
    prices_usd: deps.pricesUsd,
    credits_per_usd: deps.creditsPerUsd,
    max_images_per_request: deps.maxImagesPerRequest,
  };

  app.get('/', async (_request, reply) => reply.type('text/html; charset=utf-8').send(INDEX));
  app.get('/playground', async (request, reply) => {
    const b = await bundle(request);
    reply.header('content-security-policy', CSP).header('referrer-policy', 'no-referrer');
    return sendAsset(request, reply, b.html);
  });
  app.get('/playground/app.js', async (request, reply) => sendAsset(request, reply, (await bundle(request)).js));
  app.get('/playground/app.css', async (request, reply) => sendAsset(request, reply, (await bundle(request)).css));
  app.get('/playground/config.json', async (_request, reply) => reply.header('cache-control', 'no-cache').send(config));
}
