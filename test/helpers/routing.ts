/** Writes a routing file (docs/backends/routing.md) for tests that put fake GPU backends behind the public model. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MODEL } from './server.ts';

/**
 * `backendLines` are YAML flow mappings, one per backend. The circuit breaker is set out of reach: the
 * tests' failures are deliberate, and an opened circuit would change routing (503s instead of failover).
 */
export function writeRoutingFile(backendLines: string[]): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qis-routing-'));
  const file = path.join(dir, 'backends.yaml');
  fs.writeFileSync(
    file,
    ['models:', `  ${MODEL}:`, '    backends:', ...backendLines.map((l) => `      - ${l}`), 'circuitBreaker: { failureThreshold: 100, resetMs: 1000 }', ''].join('\n'),
  );
  return file;
}
