/** OpenAPI paths and schemas of per-key limits (GET /v1/usage) and the admin routes (/v1/admin/...). */

const errorRef = { description: 'Error', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };
const errors = (codes: number[]) => Object.fromEntries(codes.map((c) => [String(c), errorRef]));
const json = (ref: string, description: string) => ({ description, content: { 'application/json': { schema: { $ref: `#/components/schemas/${ref}` } } } });

const nullableInt = (description: string) => ({ type: 'integer', nullable: true, description });
/** A limit as it is set: an integer, null (no limit for this key) or "default" (the server's KEY_DEFAULT_*). */
const limitSetting = (description: string, minimum: number) => ({
  description: `${description}: an integer (minimum ${minimum}), null for no limit, or "default" for the server's KEY_DEFAULT_* setting`,
  nullable: true,
  oneOf: [{ type: 'integer', minimum }, { type: 'string', enum: ['default'] }],
});

const limitsInForce = {
  type: 'object',
  description: 'The limits in force (null: none)',
  properties: {
    requests_per_minute: nullableInt('generation requests admitted in any 60-second window (sliding)'),
    max_concurrent_jobs: nullableInt("the key's queued plus running jobs"),
    daily_credits: nullableInt('credits per UTC day, counting the prices of queued and running jobs'),
    monthly_credits: nullableInt('credits per UTC calendar month, likewise'),
  },
};

const creditPeriod = {
  type: 'object',
  properties: {
    limit: nullableInt('null: no budget'),
    used: { type: 'number', description: 'charged this period' },
    held: { type: 'number', description: 'prices of queued and running jobs, charged only if they succeed' },
    remaining: { type: 'number', nullable: true, description: 'limit − used − held (null without a limit)' },
    resets_at: { type: 'string', format: 'date-time' },
  },
};

export const adminSchemas = {
  Usage: {
    type: 'object',
    properties: {
      object: { type: 'string', enum: ['usage'] },
      key_id: { type: 'string' },
      generations: { type: 'integer' },
      credits_used: { type: 'number' },
      usd_spent: { type: 'number' },
      by_model: { type: 'array', items: { type: 'object' } },
      limits: {
        type: 'object',
        properties: {
          requests_per_minute: { type: 'object', properties: { limit: nullableInt('null: none'), used: { type: 'integer' }, remaining: nullableInt(''), resets_in_s: { type: 'integer' } } },
          max_concurrent_jobs: { type: 'object', properties: { limit: nullableInt('null: none'), in_use: { type: 'integer' }, remaining: nullableInt('') } },
          daily_credits: creditPeriod,
          monthly_credits: creditPeriod,
        },
      },
    },
  },
  ApiKey: {
    type: 'object',
    description: 'An API key, without its secret (shown only in the response that created it)',
    properties: {
      object: { type: 'string', enum: ['api_key'] },
      id: { type: 'string' },
      name: { type: 'string' },
      role: { type: 'string', enum: ['admin', 'user'] },
      source: { type: 'string', enum: ['env', 'cli'], description: 'env: API_KEYS / ADMIN_API_KEYS; cli: made with the CLI or the admin API' },
      prefix: { type: 'string' },
      created_at: { type: 'integer', description: 'ms since epoch' },
      revoked_at: { type: 'integer', nullable: true },
      revoked_by: { type: 'string', nullable: true, enum: ['cli', 'env'] },
      limits: limitsInForce,
      limits_from_defaults: { type: 'array', items: { type: 'string' }, description: 'limits that follow the KEY_DEFAULT_* settings' },
    },
  },
  ApiKeyChange: {
    type: 'object',
    additionalProperties: false,
    properties: {
      name: { type: 'string', minLength: 1, maxLength: 100 },
      role: { type: 'string', enum: ['admin', 'user'], description: "not for env keys: ADMIN_API_KEYS sets theirs" },
      requests_per_minute: limitSetting('requests per minute', 1),
      max_concurrent_jobs: limitSetting('queued plus running jobs', 1),
      daily_credits: limitSetting('credits per UTC day', 0),
      monthly_credits: limitSetting('credits per UTC month', 0),
    },
  },
};

const keyId = { name: 'id', in: 'path', required: true, description: 'the exact key id (never a prefix)', schema: { type: 'string' } };
const change = { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/ApiKeyChange' } } } };

export const adminPaths = {
  '/v1/usage': {
    get: {
      operationId: 'getUsage',
      summary: "The caller's usage totals, its limits and what remains of each",
      responses: { '200': json('Usage', 'Totals and limits'), ...errors([401]) },
    },
  },
  '/v1/admin/keys': {
    get: { operationId: 'adminListKeys', summary: 'Every API key (admin keys only)', responses: { '200': { description: '{object: "list", data: [ApiKey]}' }, ...errors([401, 403]) } },
    post: {
      operationId: 'adminCreateKey',
      summary: 'Make a key; the response is the only place its secret (`key`) and `webhook_secret` appear',
      requestBody: { ...change, required: false },
      responses: { '201': { description: 'ApiKey plus key and webhook_secret' }, ...errors([400, 401, 403]) },
    },
  },
  '/v1/admin/keys/{id}': {
    get: { operationId: 'adminGetKey', summary: 'One key', parameters: [keyId], responses: { '200': json('ApiKey', 'The key'), ...errors([401, 403, 404]) } },
    patch: {
      operationId: 'adminUpdateKey',
      summary: "Change a key's name, role or limits (fields left out stay as they are)",
      parameters: [keyId],
      requestBody: change,
      responses: { '200': json('ApiKey', 'The key as it is now'), ...errors([400, 401, 403, 404]) },
    },
  },
  '/v1/admin/keys/{id}/revoke': {
    post: {
      operationId: 'adminRevokeKey',
      summary: 'Revoke the key with exactly this id, for good (API_KEYS cannot revive it); effective at once',
      parameters: [keyId],
      responses: { '200': json('ApiKey', 'The key, revoked'), ...errors([401, 403, 404]) },
    },
  },
  '/v1/admin/keys/{id}/usage': {
    get: { operationId: 'adminKeyUsage', summary: "One key's usage and limits", parameters: [keyId], responses: { '200': json('Usage', 'Totals and limits'), ...errors([401, 403, 404]) } },
  },
  '/v1/admin/usage': {
    get: { operationId: 'adminListUsage', summary: "Every key's usage and limits, with its name, role and revoked_at", responses: { '200': { description: '{object: "list", data: [Usage]}' }, ...errors([401, 403]) } },
  },
};
