/**
 * /v1/webhooks — the caller's key's default webhook (used by jobs that name none) and its signing
 * secret. The secret is shown once, by POST /v1/webhooks/secret; everything else only says whether
 * one exists.
 */
import type { FastifyInstance, preHandlerHookHandler } from 'fastify';
import { ApiError } from '../../domain/errors.ts';
import { WEBHOOK_EVENTS, type WebhookEvent } from '../../domain/jobs.ts';
import type { KeyStore } from '../../domain/ports.ts';
import { validateWebhookUrl } from '../../jobs/webhooks/dispatcher.ts';

export interface WebhookRouteDeps {
  authenticate: preHandlerHookHandler;
  keys: KeyStore;
  /** Same setting as the dispatcher's: a URL it would refuse is refused here first. */
  allowPrivate: boolean;
}

const DEFAULT_EVENTS: WebhookEvent[] = ['completed'];
const FIELDS = new Set(['url', 'events']);

function parseEvents(value: unknown): WebhookEvent[] {
  const param = 'events';
  if (value === undefined) return DEFAULT_EVENTS;
  if (!Array.isArray(value)) throw new ApiError('invalid_value', `events must be an array of ${WEBHOOK_EVENTS.join(', ')}`, { param });
  if (value.length < 1 || value.length > WEBHOOK_EVENTS.length) {
    throw new ApiError('invalid_value', `events must list 1 to ${WEBHOOK_EVENTS.length} events`, { param });
  }
  value.forEach((event, i) => {
    if (!(WEBHOOK_EVENTS as readonly unknown[]).includes(event)) {
      throw new ApiError('invalid_value', `events[${i}] must be one of ${WEBHOOK_EVENTS.join(', ')}`, { param: `events[${i}]` });
    }
    if (value.indexOf(event) !== i) throw new ApiError('invalid_value', `events[${i}] repeats ${String(event)}`, { param: `events[${i}]` });
  });
  return value as WebhookEvent[];
}

export function registerWebhookRoutes(app: FastifyInstance, deps: WebhookRouteDeps): void {
  const { authenticate, keys } = deps;

  async function settingsBody(keyId: string) {
    const settings = await keys.webhookSettings(keyId);
    return { url: settings.url, events: settings.events, has_secret: settings.hasSecret };
  }

  app.get('/v1/webhooks', { preHandler: authenticate }, async (request) => settingsBody(request.apiKey!.id));

  app.put('/v1/webhooks', { preHandler: authenticate }, async (request) => {
    const body = request.body as Record<string, unknown> | null | undefined;
    if (!body || typeof body !== 'object' || Array.isArray(body)) {
      throw new ApiError('invalid_value', 'request body must be a JSON object {"url": ..., "events": [...]}');
    }
    const unknown = Object.keys(body).find((k) => !FIELDS.has(k));
    if (unknown) throw new ApiError('unknown_field', `${unknown} is not a recognised field`, { param: unknown });
    if (body.url === undefined) throw new ApiError('missing_field', 'url is required', { param: 'url' });
    if (typeof body.url !== 'string') throw new ApiError('invalid_value', 'url must be a string (an http or https URL)', { param: 'url' });
    validateWebhookUrl(body.url, deps.allowPrivate, 'url');
    const events = parseEvents(body.events);
    await keys.setDefaultWebhook(request.apiKey!.id, { url: body.url, events });
    return settingsBody(request.apiKey!.id);
  });

  app.delete('/v1/webhooks', { preHandler: authenticate }, async (request) => {
    await keys.setDefaultWebhook(request.apiKey!.id, null);
    return settingsBody(request.apiKey!.id);
  });

  app.post('/v1/webhooks/secret', { preHandler: authenticate }, async (request, reply) => {
    const secret = await keys.rotateWebhookSecret(request.apiKey!.id);
    request.log.info({ keyId: request.apiKey!.id }, 'webhook secret rotated');
    // Shown once: no cache between us and the caller may keep it.
    reply.header('cache-control', 'no-store');
    return { secret };
  });
}
