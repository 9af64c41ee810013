#!/usr/bin/env node
// The `outpost` command. Runs the compiled build in dist/ (made by `npm ci` through the `prepare`
// script, or `npm run build`) when it is current with the TypeScript sources, else the sources
// through tsx's loader, so an edited source never runs stale (bin/dist-stamp.js). The compiled
// build starts faster and needs no loader thread (a second V8 isolate, ~45 MiB in a long-running
// agent). OUTPOST_FROM_SOURCE=1 always runs the sources.
import { setFlagsFromString } from 'node:v8';
import { distIsCurrent } from './dist-stamp.js';

// `outpost agent` keeps V8's young generation at its initial 1 MiB semi-spaces instead of letting
// it grow to 16 MiB each: an idle agent's new space holds ~17 MiB otherwise (issue 7, footprint).
// Set here, before anything is loaded, so that it holds for every way the agent is started, unless
// node was started with the flag already (bin/outpost-agent, the production launcher, passes it with
// the flags that must be in place before the start; a user's own value is not overridden).
const givenAtStart = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)].some((a) => /^--semi[-_]space[-_]growth[-_]factor\b/.test(a));
if (process.argv[2] === 'agent' && !givenAtStart) setFlagsFromString('--semi-space-growth-factor=1');

if (process.env.OUTPOST_FROM_SOURCE !== '1' && await distIsCurrent(new URL('..', import.meta.url).pathname)) {
  await import('../dist/cli/main.js');
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../cli/main.ts');
}
