#!/usr/bin/env node
// The package's executable: runs the TypeScript CLI (src/cli/main.ts) through tsx, as the rest of the project runs
// (no build step). `npx qwen-image-server generate --prompt "..."` from the repository, or after `npm link`.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
