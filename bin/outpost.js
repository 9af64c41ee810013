#!/usr/bin/env node
// The `outpost` command. Runs the TypeScript sources through tsx's loader, so a fresh
// `npm ci` is all it takes; `npm run build` produces dist/ for packaging.
import { register } from 'tsx/esm/api';

register();
await import('../cli/main.ts');
