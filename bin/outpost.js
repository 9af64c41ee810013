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
const startFlags = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
const givenAtStart = (flag) => startFlags.some((a) => flag.test(a));
if (process.argv[2] === 'agent' && !givenAtStart(/^--semi[-_]space[-_]growth[-_]factor\b/)) setFlagsFromString('--semi-space-growth-factor=1');

// Every command sweeps dead ArrayBuffers right after each GC instead of on a background thread.
// Measured (bench tunnel, issue 8): a hub relaying a port-forward (a Buffer per socket read,
// another per WebSocket message) ran a full mark-compact every ~20-30 MB relayed (--trace-gc:
// 60-80 per GiB, "external memory pressure") and spent 1.5-2.3 ms of CPU per MiB; with this flag
// 0.3-1.2. The likely reason: with concurrent sweeping, the freeing of Buffers a scavenge found
// dead lags the allocation of new ones, so V8's external-memory limit keeps being crossed.
if (!givenAtStart(/^--(no-)?concurrent[-_]array[-_]buffer[-_]sweeping\b/)) setFlagsFromString('--no-concurrent-array-buffer-sweeping');

if (process.env.OUTPOST_FROM_SOURCE !== '1' && await distIsCurrent(new URL('..', import.meta.url).pathname)) {
  await import('../dist/cli/main.js');
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../cli/main.ts');
}
