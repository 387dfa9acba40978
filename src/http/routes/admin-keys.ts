/**
 * /v1/admin/... — key management and everyone's usage over HTTP, for admin keys only (403 for user keys).
 * The same operations as the CLI: create (the secret is in that one response and never again), list, read,
 * update name / role / limits, revoke by exact id; and usage with limits for every key or one.
 */
import type { FastifyInstance, FastifyRequest, preHandlerHookHandler } from 'fastify';
import { ApiError } from '../../domain/errors.ts';
import type { ApiKeyRecord, KeyStore, KeyUpdate, UsageStore } from '../../domain/ports.ts';
import { KEY_ROLES, LIMIT_FIELDS, parseLimitSetting, type KeyLimitSettings, type KeyLimits, type KeyRole, type LimitField } from '../../domain/key-limits.ts';
import type { KeyLimiter } from '../../limits/ports.ts';
import { renderUsage } from './usage.ts';
import { renderKey } from '../../contracts/key-view.ts';

export interface AdminRouteDeps {
  requireAdmin: preHandlerHookHandler;
  keys: KeyStore;
  usage: UsageStore;
  limiter: Pick<KeyLimiter, 'status'>;
  /** KEY_DEFAULT_*: what a limit set to "default" means. */
  defaultLimits: KeyLimits;
}

const FIELDS = ['name', 'role', ...LIMIT_FIELDS] as const;
const MAX_NAME_LENGTH = 100;

/** A create or update body: known fields only, each checked; nothing is written unless all pass. */
export function parseKeyBody(body: unknown): KeyUpdate {
  if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new ApiError('invalid_value', 'request body must be a JSON object', { param: null });
  }
  const input = body as Record<string, unknown>;
  for (const field of Object.keys(input)) {
    if (!(FIELDS as readonly string[]).includes(field)) {
      throw new ApiError('unknown_field', `unknown field "${field}"; allowed: ${FIELDS.join(', ')}`, { param: field });
    }
  }
  const out: KeyUpdate = {};
  if (input.name !== undefined) {
    const name = input.name;
    // Printable text only: names end up in logs and CLI tables.
    if (typeof name !== 'string' || name.trim().length === 0 || [...name].length > MAX_NAME_LENGTH || /\p{Cc}/u.test(name)) {
      throw new ApiError('invalid_value', `name must be a string of 1 to ${MAX_NAME_LENGTH} characters without control characters`, { param: 'name' });
    }
    out.name = name;
  }
  if (input.role !== undefined) {
    if (!(KEY_ROLES as readonly unknown[]).includes(input.role)) throw new ApiError('invalid_value', `role must be one of ${KEY_ROLES.join(', ')}`, { param: 'role' });
    out.role = input.role as KeyRole;
  }
  const limits: Partial<KeyLimitSettings> = {};
  for (const field of LIMIT_FIELDS) {
    if (input[field] !== undefined) limits[field as LimitField] = parseLimitSetting(field, input[field]);
  }
  if (Object.keys(limits).length > 0) out.limits = limits;
  return out;
}

const idOf = (request: FastifyRequest) => (request.params as { id: string }).id;
const noSuchKey = (id: string) => new ApiError('not_found', `no API key with id "${id}" (GET /v1/admin/keys lists them)`, { param: 'id' });

export function registerAdminRoutes(app: FastifyInstance, deps: AdminRouteDeps): void {
  const { requireAdmin, keys } = deps;
  const view = (record: ApiKeyRecord) => renderKey(record, deps.defaultLimits);
  const requireKey = async (id: string) => (await keys.get(id)) ?? Promise.reject(noSuchKey(id));

  app.post('/v1/admin/keys', { preHandler: requireAdmin }, async (request, reply) => {
    // No body at all makes a user key with the defaults; a body must be an object (JSON null is not).
    const change = parseKeyBody(request.body === undefined ? {} : request.body);
    const { record, secret } = await keys.create(change.name ?? 'admin-api', 'cli', undefined, { role: change.role, limits: change.limits });
    const webhookSecret = await keys.rotateWebhookSecret(record.id);
    request.log.info({ adminKeyId: request.apiKey!.id, keyId: record.id, role: record.role }, 'API key created');
    // The only time the secrets are shown: only the key's hash is stored.
    return reply.code(201).send({ ...view(record), key: secret, webhook_secret: webhookSecret });
  });

  app.get('/v1/admin/keys', { preHandler: requireAdmin }, async () => ({ object: 'list', data: (await keys.list()).map(view) }));

  app.get('/v1/admin/keys/:id', { preHandler: requireAdmin }, async (request) => view(await requireKey(idOf(request))));

  app.patch('/v1/admin/keys/:id', { preHandler: requireAdmin }, async (request) => {
    const id = idOf(request);
    const change = parseKeyBody(request.body);
    if (Object.keys(change).length === 0) {
      throw new ApiError('invalid_value', `request body must set at least one of ${FIELDS.join(', ')}`, { param: null });
    }
    const updated = await keys.update(id, change);
    if (!updated) throw noSuchKey(id);
    request.log.info({ adminKeyId: request.apiKey!.id, keyId: id, change }, 'API key updated');
    return view(updated);
  });

  // Exact id only; revoking a revoked key answers the key as it is.
  app.post('/v1/admin/keys/:id/revoke', { preHandler: requireAdmin }, async (request) => {
    const id = idOf(request);
    await requireKey(id);
    if (await keys.revoke(id)) request.log.info({ adminKeyId: request.apiKey!.id, keyId: id }, 'API key revoked');
    return view(await requireKey(id));
  });

  app.get('/v1/admin/keys/:id/usage', { preHandler: requireAdmin }, async (request) => {
    const id = idOf(request);
    await requireKey(id);
    return renderUsage(deps, id);
  });

  app.get('/v1/admin/usage', { preHandler: requireAdmin }, async () => {
    const data = [];
    for (const record of await keys.list()) data.push({ ...(await renderUsage(deps, record.id)), name: record.name, role: record.role, revoked_at: record.revokedAtMs });
    return { object: 'list', data };
  });
}
