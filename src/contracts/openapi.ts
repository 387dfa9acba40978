/**
 * The served OpenAPI document, built from the same JSON Schema files that validate requests, so the
 * docs cannot drift from what the server accepts.
 */
import { generationRequestSchema, generationResponseSchema } from './validate-generation.ts';

function strip(schema: Record<string, unknown>): Record<string, unknown> {
  const { $id: _id, ...rest } = schema;
  return rest;
}

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

export function buildOpenApiDocument(publicUrl: string, version: string): Record<string, unknown> {
  return {
    openapi: '3.0.3',
    info: {
      title: 'qwen-image-server',
      version,
      description: 'Self-hosted implementation of the alibaba/qwen-image-2-0 image API (POST /v1/images/generations).',
    },
    servers: [{ url: publicUrl }],
    security: [{ bearer: [] }],
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: {
        GenerationRequest: strip(generationRequestSchema),
        GenerationResponse: strip(generationResponseSchema),
        Error: errorSchema,
      },
    },
    paths: {
      '/v1/images/generations': {
        post: {
          operationId: 'createImage',
          summary: 'Generate or edit an image',
          requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/GenerationRequest' } } } },
          responses: {
            '200': { description: 'The image', content: { 'application/json': { schema: { $ref: '#/components/schemas/GenerationResponse' } } } },
            ...errorResponses([400, 401, 404, 413, 415, 499, 502, 503, 504]),
          },
        },
      },
      '/v1/models': { get: { operationId: 'listModels', summary: 'Public models and the engine behind each', responses: { '200': { description: 'Model list' }, ...errorResponses([401]) } } },
      '/v1/usage': { get: { operationId: 'getUsage', summary: "The caller's usage totals", responses: { '200': { description: 'Totals' }, ...errorResponses([401]) } } },
      '/v1/watermark/detect': {
        post: {
          operationId: 'detectWatermark',
          summary: 'Look for the invisible watermark in an image (JSON {image_url} or multipart field "image")',
          responses: { '200': { description: '{detected, confidence, payload}' }, ...errorResponses([400, 401, 413, 415]) },
        },
      },
      '/healthz': { get: { operationId: 'health', security: [], summary: '200 once the engines are loaded', responses: { '200': { description: 'ok' }, '503': { description: 'loading or draining' } } } },
    },
  };
}
