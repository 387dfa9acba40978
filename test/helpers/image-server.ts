/** A loopback HTTP server handing out test images and misbehaving on purpose. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import sharp from 'sharp';
import { crc32 } from 'node:zlib';

export interface ImageServer {
  url: string;
  /** Requests seen, by path. */
  hits: string[];
  close(): Promise<void>;
}

/** A PNG whose header claims width × height but carries almost no data: a decompression bomb's header. */
export function bombPngHeader(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(data, crc32(Buffer.from(type))) >>> 0);
    return Buffer.concat([len, Buffer.from(type), data, crc]);
  };
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', Buffer.from([0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01])), chunk('IEND', Buffer.alloc(0))]);
}

export async function makeTestImages(): Promise<Record<string, Buffer>> {
  const base = sharp({ create: { width: 96, height: 64, channels: 3, background: { r: 200, g: 40, b: 40 } } });
  return {
    'red.png': await base.clone().png().toBuffer(),
    'red.jpg': await base.clone().jpeg().toBuffer(),
    'red.webp': await base.clone().webp().toBuffer(),
    'red.gif': await base.clone().gif().toBuffer(),
    'red.avif': await base.clone().avif().toBuffer(),
    // Named .png but holding JPEG bytes: content sniffing must win over the name.
    'misnamed.png': await base.clone().jpeg().toBuffer(),
  };
}

export async function startImageServer(options: { maxBytesHint?: number } = {}): Promise<ImageServer> {
  const images = await makeTestImages();
  const hits: string[] = [];
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    hits.push(path);
    const name = path.slice(1);
    if (images[name]) {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      return res.end(images[name]);
    }
    switch (path) {
      case '/text':
        res.writeHead(200, { 'content-type': 'image/png' });
        return res.end('this is not an image at all');
      case '/empty':
        res.writeHead(200, { 'content-type': 'image/png' });
        return res.end();
      case '/bomb.png':
        res.writeHead(200, { 'content-type': 'image/png' });
        return res.end(bombPngHeader(30000, 30000));
      case '/big': {
        const size = (options.maxBytesHint ?? 1024 * 1024) + 1024;
        res.writeHead(200, { 'content-type': 'image/png', 'content-length': String(size) });
        return res.end(Buffer.alloc(size));
      }
      case '/big-chunked': {
        // No content-length: the cap must hold while streaming.
        res.writeHead(200, { 'content-type': 'image/png' });
        const size = (options.maxBytesHint ?? 1024 * 1024) + 1024;
        res.write(images['red.png']);
        return res.end(Buffer.alloc(size));
      }
      case '/slow':
        res.writeHead(200, { 'content-type': 'image/png' });
        res.write(images['red.png']!.subarray(0, 10));
        return; // never ends
      case '/redirect':
        res.writeHead(302, { location: '/red.png' });
        return res.end();
      case '/redirect-invalid':
        // An unterminated IPv6 literal: no URL parser accepts it.
        res.writeHead(302, { location: 'http://[::1' });
        return res.end();
      case '/redirect-loop':
        res.writeHead(302, { location: '/redirect-loop' });
        return res.end();
      case '/redirect-file':
        res.writeHead(302, { location: 'file:///etc/passwd' });
        return res.end();
      case '/redirect-metadata':
        res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' });
        return res.end();
      default:
        res.writeHead(404, { 'content-type': 'text/plain' });
        return res.end('not found');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    hits,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
