/**
 * Plumbing shared by the fake backends in test/fakes/: a server on 127.0.0.1:0 that can be closed
 * with its open connections, body and multipart readers, and solid-colour test images.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import sharp from 'sharp';
import { Request as UndiciRequest, type FormData } from 'undici';
import type { RawImage } from '../../domain/types.ts';

export interface StartedServer {
  server: Server;
  url: string;
  port: number;
  close(): Promise<void>;
}

export async function startHttpServer(
  handler: (req: IncomingMessage, res: ServerResponse) => void | Promise<void>,
): Promise<StartedServer> {
  const server = createServer((req, res) => {
    Promise.resolve(handler(req, res)).catch((err: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { error: { message: `fake server bug: ${(err as Error).message}` } });
      else res.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Parses multipart/form-data with undici's own parser (the same code a fetch client uses). */
export async function parseMultipart(req: IncomingMessage, body: Buffer): Promise<FormData> {
  const request = new UndiciRequest('http://fake.local/', {
    method: 'POST',
    headers: { 'content-type': req.headers['content-type'] ?? '' },
    body,
  });
  return request.formData();
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export function sendBytes(res: ServerResponse, status: number, body: Buffer, contentType: string): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': body.length });
  res.end(body);
}

/** A PNG of one colour; the colour is derived from `seed` so different seeds give different images. */
export async function solidPng(width: number, height: number, seed = 0): Promise<Buffer> {
  const colour = { r: seed % 251, g: (seed >> 8) % 241, b: (seed >> 16) % 239 };
  return sharp({ create: { width, height, channels: 3, background: colour } }).png().toBuffer();
}

export function solidRaw(width: number, height: number, value = 128): RawImage {
  return { width, height, data: new Uint8Array(width * height * 3).fill(value) };
}

export async function imageSize(bytes: Uint8Array): Promise<{ width: number; height: number } | undefined> {
  try {
    const meta = await sharp(bytes).metadata();
    return meta.width && meta.height ? { width: meta.width, height: meta.height } : undefined;
  } catch {
    return undefined;
  }
}

/** Resolves after `ms` or when the client closes the connection first (returns false then). */
export function waitUnlessClosed(req: IncomingMessage, res: ServerResponse, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    if (res.destroyed || res.writableEnded) {
      resolve(false);
      return;
    }
    const onClose = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      res.off('close', onClose);
      resolve(true);
    }, ms);
    res.once('close', onClose);
    void req;
  });
}
