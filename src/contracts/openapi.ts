/**
 * The served OpenAPI document, built from the same JSON Schema files that validate requests, so the
 * docs cannot drift from what the server accepts.
 */
import { generationRequestSchema, generationResponseSchema } from './validate-generation.ts';
import { adminPaths, adminSchemas } from './openapi-admin.ts';

function strip(schema: Record<string, unknown>): Record<string, unknown> {
  const { $id: _id, ...rest } = schema;
  return rest;
}

/**
 * POST /v1/images/edits: the generation fields as form fields, with the reference images as files
 * instead of image_urls (multipart/form-data, as OpenAI's edit endpoint and its clients send it).
 */
function editRequestSchema(): Record<string, unknown> {
  const { image_urls: _urls, ...fields } = (generationRequestSchema.properties ?? {}) as Record<string, unknown>;
  const file = { type: 'string', format: 'binary' };
  return {
    type: 'object',
    description:
      'multipart/form-data. Every field of GenerationRequest except image_urls, written as text: booleans "true"/"false", integers in digits, objects flattened (image_size[width], image_size[height], webhook[url], webhook[events][]). Without response_format an edit answers b64_json.',
    properties: {
      image: {
        oneOf: [file, { type: 'array', items: file, minItems: 1, maxItems: 3 }],
        description: 'The reference images, 1 to 3, in order (the first is reference image 1): one file in image, or several in repeated image[] fields. Same formats and limits as image_urls (PNG, JPEG, WebP, GIF, AVIF; MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS).',
      },
      mask: { ...file, description: 'Refused (400): no engine here does masked inpainting; describe the change in prompt.' },
      ...fields,
    },
    required: ['model', 'prompt', 'image'],
  };
}

/** What `stream: true` answers (src/http/routes/stream-generation.ts). */
const streamDescription =
  'With stream: true, Server-Sent Events in OpenAI\'s shapes: `event: image_generation.partial_image` (image_edit.partial_image on edits) with {type, b64_json, partial_image_index, created_at, size, quality, background, output_format}, partial_images of them, then one `image_generation.completed` per image with {type, b64_json, created_at, size, quality, background, output_format, usage: {input_tokens: 0, output_tokens: 0, total_tokens: 0, input_tokens_details, credits_used, usd_spent}, seed, revised_prompt}; a failure is `event: error` with {type: "error", error}.';

const errorSchema = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: {
        message: { type: 'string', description: 'Names the field and the rule that failed.' },
        type: { type: 'string' },
        param: { type: 'string', nullable: true },
        code: { type: 'string', description: 'Stable machine-readable code.' },
      },
      required: ['message', 'type', 'param', 'code'],
    },
  },
};

const errorResponses = (codes: number[]) =>
  Object.fromEntries(codes.map((c) => [String(c), { description: 'Error', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } }]));

const JOB_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'canceled'];

const jobIdParameter = { name: 'id', in: 'path', required: true, schema: { type: 'string', pattern: '^job_[0-9a-f-]{36}$' } };

/** The job object (contracts/job-view.ts). */
const jobSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    object: { type: 'string', enum: ['image.generation.job'] },
    model: { type: 'string' },
    status: { type: 'string', enum: JOB_STATUSES },
    created_at: { type: 'integer', description: 'ms since epoch' },
    started_at: { type: 'integer', nullable: true },
    completed_at: { type: 'integer', nullable: true },
    attempts: { type: 'integer', description: 'runs so far (a job interrupted by a crash runs again)' },
    queue_position: { type: 'integer', nullable: true, description: 'jobs ahead while queued (0 = next)' },
    progress: { type: 'object', nullable: true, properties: { step: { type: 'integer' }, steps: { type: 'integer', nullable: true } } },
    input: { type: 'object', description: 'the request as it will be drawn (the seed is chosen at submit)' },
    result: { allOf: [{ $ref: '#/components/schemas/GenerationResponse' }], nullable: true, description: 'exactly the synchronous response body' },
    error: { type: 'object', nullable: true, description: 'the error object of the synchronous response' },
    timings: { type: 'object', nullable: true, additionalProperties: { type: 'number' } },
    urls: { type: 'object', properties: { get: { type: 'string' }, cancel: { type: 'string' }, events: { type: 'string' } } },
  },
  required: ['id', 'object', 'model', 'status', 'created_at', 'urls'],
};

const payloadSchema = { type: 'object', nullable: true, properties: { issuer_id: { type: 'integer' }, generation_id: { type: 'integer' } } };

/** POST /v1/images/verify's answer (provenance/verify-image.ts). */
const verifyReportSchema = {
  type: 'object',
  properties: {
    manifest: {
      type: 'object',
      properties: {
        present: { type: 'boolean' },
        state: { type: 'string', enum: ['trusted', 'valid', 'invalid'] },
        reason: { type: 'string', nullable: true, description: 'why it is invalid: the first failure code and explanation' },
        failures: { type: 'array', items: { type: 'object', properties: { code: { type: 'string' }, explanation: { type: 'string', nullable: true }, url: { type: 'string', nullable: true } } } },
        label: { type: 'string', nullable: true },
        claim_generator: {},
        signature: { type: 'object', nullable: true, properties: { issuer: { type: 'string', nullable: true }, common_name: { type: 'string', nullable: true }, alg: { type: 'string', nullable: true }, time: { type: 'string', nullable: true } } },
        assertions: { type: 'array', items: { type: 'object', properties: { label: { type: 'string' }, data: {} } } },
      },
      required: ['present'],
    },
    watermark: { type: 'object', properties: { detected: { type: 'boolean' }, confidence: { type: 'number' }, payload: payloadSchema } },
    soft_binding: { type: 'object', properties: { payload: payloadSchema, matches_watermark: { type: 'boolean', nullable: true } } },
    trace: {
      type: 'object',
      nullable: true,
      properties: {
        status: { type: 'string', enum: ['yours', 'other_key', 'not_found', 'foreign_issuer'] },
        issuer_id: { type: 'integer' },
        generation_id: { type: 'integer' },
        generations: { type: 'array', items: { type: 'object', properties: { job_id: { type: 'string', nullable: true }, model: { type: 'string' }, width: { type: 'integer' }, height: { type: 'integer' }, created_at: { type: 'integer' } } } },
      },
    },
  },
  required: ['manifest', 'watermark', 'soft_binding', 'trace'],
};

export function buildOpenApiDocument(publicUrl: string, version: string): Record<string, unknown> {
  return {
    openapi: '3.0.3',
    info: {
      title: 'qwen-image-server',
      version,
      description: 'Self-hosted implementation of the alibaba/qwen-image-2-0 image API (POST /v1/images/generations), with OpenAI\'s image fields and POST /v1/images/edits so that OpenAI clients work unchanged.',
    },
    servers: [{ url: publicUrl }],
    security: [{ bearer: [] }],
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: {
        GenerationRequest: strip(generationRequestSchema),
        EditRequest: editRequestSchema(),
        GenerationResponse: strip(generationResponseSchema),
        Error: errorSchema,
        Job: jobSchema,
        ...adminSchemas,
      },
    },
    paths: {
      '/v1/images/generations': {
        post: {
          operationId: 'createImage',
          summary: 'Generate or edit an image',
          description:
            'Synchronous by default (the seed\'s contract). `Prefer: respond-async` answers 202 with the job at once; `Prefer: wait=N` waits up to N seconds, then 200 with the result or 202 with the job. `Idempotency-Key` makes retries safe: the same key and body from the same API key return the same job (charged once); another body with that key is a 422.',
          parameters: [
            { name: 'Prefer', in: 'header', schema: { type: 'string', example: 'respond-async' } },
            { name: 'Idempotency-Key', in: 'header', schema: { type: 'string', maxLength: 255 } },
          ],
          requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/GenerationRequest' } } } },
          responses: {
            '200': {
              description: `The image(s). ${streamDescription}`,
              content: { 'application/json': { schema: { $ref: '#/components/schemas/GenerationResponse' } }, 'text/event-stream': { schema: { type: 'string' } } },
            },
            '202': { description: 'The job (asynchronous)', content: { 'application/json': { schema: { $ref: '#/components/schemas/Job' } } } },
            ...errorResponses([400, 401, 404, 409, 413, 415, 422, 499, 502, 503, 504]),
          },
        },
      },
      '/v1/images/edits': {
        post: {
          operationId: 'editImage',
          summary: 'Edit images uploaded as files (OpenAI\'s edit endpoint)',
          description:
            'The same job, answers and charge as POST /v1/images/generations with image_urls, for clients that upload files (openai-node images.edit, the AI SDK). Prefer, Idempotency-Key and stream work as there (the key compares the fields and the images\' SHA-256).',
          parameters: [
            { name: 'Prefer', in: 'header', schema: { type: 'string', example: 'respond-async' } },
            { name: 'Idempotency-Key', in: 'header', schema: { type: 'string', maxLength: 255 } },
          ],
          requestBody: { required: true, content: { 'multipart/form-data': { schema: { $ref: '#/components/schemas/EditRequest' } } } },
          responses: {
            '200': {
              description: `The image(s), b64_json unless response_format says url. ${streamDescription.replace('image_generation.completed', 'image_edit.completed')}`,
              content: { 'application/json': { schema: { $ref: '#/components/schemas/GenerationResponse' } }, 'text/event-stream': { schema: { type: 'string' } } },
            },
            '202': { description: 'The job (asynchronous)', content: { 'application/json': { schema: { $ref: '#/components/schemas/Job' } } } },
            ...errorResponses([400, 401, 402, 404, 409, 413, 415, 422, 429, 499, 502, 503, 504]),
          },
        },
      },
      '/v1/jobs': {
        get: {
          operationId: 'listJobs',
          summary: "The caller's jobs, newest first",
          parameters: [
            { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 100, default: 20 } },
            { name: 'status', in: 'query', schema: { type: 'string', enum: JOB_STATUSES } },
            { name: 'after', in: 'query', description: 'next_cursor of the previous page', schema: { type: 'string' } },
          ],
          responses: { '200': { description: '{object: "list", data: [Job], has_more, next_cursor}' }, ...errorResponses([400, 401]) },
        },
      },
      '/v1/jobs/{id}': {
        get: {
          operationId: 'getJob',
          summary: 'One job: status, queue position, progress, result or error',
          parameters: [jobIdParameter],
          responses: { '200': { description: 'The job', content: { 'application/json': { schema: { $ref: '#/components/schemas/Job' } } } }, ...errorResponses([401, 404]) },
        },
      },
      '/v1/jobs/{id}/cancel': {
        post: {
          operationId: 'cancelJob',
          summary: 'Cancel a queued or running job (its engine is aborted; a canceled job is never charged)',
          parameters: [jobIdParameter],
          responses: { '200': { description: 'The job, now canceled', content: { 'application/json': { schema: { $ref: '#/components/schemas/Job' } } } }, ...errorResponses([401, 404, 409]) },
        },
      },
      '/v1/jobs/{id}/events': {
        get: {
          operationId: 'streamJobEvents',
          summary: 'Server-Sent Events: queued (queue_position), running (attempt), progress (step, steps, preview data: URI), then succeeded | failed | canceled (the job) and the stream ends. A late subscriber gets the current state first.',
          parameters: [jobIdParameter],
          responses: { '200': { description: 'text/event-stream' }, ...errorResponses([401, 404]) },
        },
      },
      '/v1/webhooks': {
        get: { operationId: 'getWebhookDefault', summary: "The key's default webhook {url, events, has_secret}", responses: { '200': { description: 'Settings' }, ...errorResponses([401]) } },
        put: { operationId: 'setWebhookDefault', summary: 'Set the default webhook {url, events?} used by requests without a webhook', responses: { '200': { description: 'Settings' }, ...errorResponses([400, 401]) } },
        delete: { operationId: 'clearWebhookDefault', summary: 'Remove the default webhook', responses: { '200': { description: 'Settings' }, ...errorResponses([401]) } },
      },
      '/v1/webhooks/secret': {
        post: {
          operationId: 'rotateWebhookSecret',
          summary: "Make a new whsec_ signing secret for the key's webhooks and show it, once (Standard Webhooks: webhook-id, webhook-timestamp, webhook-signature)",
          responses: { '200': { description: '{secret}' }, ...errorResponses([401]) },
        },
      },
      '/v1/models': { get: { operationId: 'listModels', summary: 'Public models and the engine behind each', responses: { '200': { description: 'Model list' }, ...errorResponses([401]) } } },
      '/v1/watermark/detect': {
        post: {
          operationId: 'detectWatermark',
          summary: 'Look for the invisible watermark in an image (JSON {image_url} or multipart field "image")',
          responses: { '200': { description: '{detected, confidence, payload}' }, ...errorResponses([400, 401, 413, 415]) },
        },
      },
      ...adminPaths,
      '/v1/images/verify': {
        post: {
          operationId: 'verifyImage',
          summary: "Where an image comes from: its C2PA manifest, the invisible watermark, and the generation the mark points to (the caller's own only)",
          description:
            'Same input as watermark detection. `manifest.state` is `trusted` (the signing certificate chains to C2PA_TRUST_ANCHORS), `valid` (intact and correctly signed) or `invalid` (with `reason`, e.g. `assertion.dataHash.mismatch` after a pixel changed); `{"present": false}` when there is none. `trace.status`: `yours` (with job ids), `other_key` (no details), `not_found`, `foreign_issuer`. See docs/provenance.md.',
          requestBody: {
            required: true,
            content: {
              'application/json': { schema: { type: 'object', properties: { image_url: { type: 'string', description: 'http(s) URL or data: URI' } }, required: ['image_url'], additionalProperties: false } },
              'multipart/form-data': { schema: { type: 'object', properties: { image: { type: 'string', format: 'binary' } }, required: ['image'] } },
            },
          },
          responses: { '200': { description: 'The report', content: { 'application/json': { schema: verifyReportSchema } } }, ...errorResponses([400, 401, 413, 415]) },
        },
      },
      '/healthz': { get: { operationId: 'health', security: [], summary: 'each dependency with its state; 200 once ready', responses: { '200': { description: 'ok' }, '503': { description: 'loading, draining, or a dependency does not answer (degraded)' } } } },
      '/readyz': { get: { operationId: 'ready', security: [], summary: 'the same answer as /healthz, for load balancers', responses: { '200': { description: 'ok' }, '503': { description: 'loading, draining or degraded' } } } },
    },
  };
}
