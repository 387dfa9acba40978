/**
 * The one image an inspection endpoint (watermark detection, provenance verification) is asked about: JSON
 * {"image_url": "<http(s) URL or data: URI>"} (fetched with the image_urls rules) or a multipart upload with the
 * file in field "image". Returns the bytes as received and the field they came from (for errors).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from '../../domain/errors.ts';
import type { ImageFetcher } from '../../images/fetch-image.ts';

export async function readImageInput(request: FastifyRequest, fetcher: ImageFetcher, maxUploadBytes: number, signal?: AbortSignal): Promise<{ bytes: Buffer; param: string }> {
  if (request.isMultipart()) {
    const param = 'image';
    const file = await request.file();
    if (!file || file.fieldname !== 'image') throw new ApiError('missing_field', 'image is required: send the file in multipart field "image"', { param });
    const bytes = await file.toBuffer().catch((err: Error & { code?: string }) => {
      if (err.code === 'FST_REQ_FILE_TOO_LARGE') throw new ApiError('image_too_large', `image is larger than the limit of ${maxUploadBytes} bytes`, { param });
      throw err;
    });
    return { bytes, param };
  }
  const param = 'image_url';
  const body = request.body as Record<string, unknown> | null;
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new ApiError('invalid_value', 'request body must be a JSON object {"image_url": ...}');
  const unknown = Object.keys(body).find((k) => k !== 'image_url');
  if (unknown) throw new ApiError('unknown_field', `${unknown} is not a recognised field`, { param: unknown });
  const url = body.image_url;
  if (url === undefined) throw new ApiError('missing_field', 'image_url is required', { param });
  if (typeof url !== 'string') throw new ApiError('invalid_value', 'image_url must be a string (http(s) URL or data: URI)', { param });
  if (!/^(https?:\/\/|data:)/i.test(url)) throw new ApiError('invalid_value', 'image_url must be an http(s) URL or a data: URI', { param });
  return { bytes: await fetcher.fetchBytes(url, param, signal), param };
}

/**
 * Runs `work` with a signal that fires when the client closes the connection before the answer is sent,
 * so a fetch or a decode waiting for the image gate stops for a caller who is gone.
 */
export async function whileClientStays<T>(reply: FastifyReply, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const clientGone = new AbortController();
  const onClose = () => {
    if (!reply.raw.writableEnded) clientGone.abort(new ApiError('client_closed_request', 'the client closed the connection'));
  };
  reply.raw.on('close', onClose);
  try {
    return await work(clientGone.signal);
  } finally {
    reply.raw.off('close', onClose);
  }
}
