/**
 * The fake's file routes: POST /upload/image into the input directory (LoadImage reads from
 * there) and GET /view for the images SaveImage / PreviewImage wrote.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { imageSize, parseMultipart, sendBytes, sendJson } from '../../../src/engines/testing/fake-http.ts';
import type { FakeComfyState } from './types.ts';

/** server.py's image_upload: the file lands at `subfolder/name`; the answer names it. */
export async function handleUpload(state: FakeComfyState, req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<void> {
  const form = await parseMultipart(req, body);
  const file = form.get('image');
  if (!file || typeof file === 'string') {
    res.writeHead(400).end();
    return;
  }
  const subfolder = String(form.get('subfolder') ?? '');
  const type = String(form.get('type') ?? 'input');
  const bytes = Buffer.from(await file.arrayBuffer());
  const name = file.name;
  state.inputs.set(subfolder ? `${subfolder}/${name}` : name, bytes);
  const size = await imageSize(bytes);
  state.fake.uploads.push({ name, subfolder, type, ...size });
  sendJson(res, 200, { name, subfolder, type });
}

/** GET /view?filename=&subfolder=&type=: 404 for a file that was never written. */
export function handleView(state: FakeComfyState, url: URL, res: ServerResponse): void {
  const key = `${url.searchParams.get('type') ?? 'output'}/${url.searchParams.get('subfolder') ?? ''}/${url.searchParams.get('filename') ?? ''}`;
  const file = state.outputs.get(key);
  if (!file) {
    res.writeHead(404).end();
    return;
  }
  sendBytes(res, 200, file, 'image/png');
}
