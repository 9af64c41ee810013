// The registry chaos run of `npm test` (issue 6): 3 agents of one unit for 25 s of agent and hub
// SIGKILLs and SIGSTOPs under registry load and watches, then the scenario's checks (nothing
// acknowledged lost, nothing deregistered back, growing versions, no partial list, convergence
// within 10 s). Runs as its own `npm run chaos` process with a deadline, like chaos-short.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { runBounded } from '../helpers/run-bounded.js';
import type { RegistryChaosReport } from '../../chaos/registry/registry-run.js';

const ROOT = resolve(import.meta.dirname, '../..');
const SEED = 1;
/** A run takes about 45 s here; past this it is stopped (SIGTERM: the harness cleans up), then killed. */
const RUN_DEADLINE_MS = 120_000;

test(`registry chaos: 3 agents x 25 s, seed ${SEED}`, { timeout: 150_000 }, async () => {
  const reportFile = resolve(ROOT, `chaos/results/registry-test-seed-${SEED}.json`);
  rmSync(reportFile, { force: true });
  const args = ['--import', 'tsx', 'chaos/main.ts', '--mode', 'registry', '--agents', '3', '--duration', '25', '--seed', String(SEED), '--report', reportFile];
  const { code, output } = await runBounded(args, RUN_DEADLINE_MS);
  console.log(output.split('\n').filter((l) => !l.startsWith('[')).join('\n'));
  const report = JSON.parse(readFileSync(reportFile, 'utf8')) as RegistryChaosReport;
  const failed = report.checks.filter((c) => !c.pass).map((c) => `${c.name}: ${c.details.join('; ')}`);
  const summary = `exit ${code}; failed: ${failed.join(' | ') || 'none'}; error: ${report.error ?? 'none'}`;
  assert.equal(report.error, undefined, summary);
  assert.deepEqual(failed, [], summary);
  assert.equal(code, 0, summary);
  // A run that did (almost) nothing would pass anything.
  assert.ok(report.faults.some((f) => / SIGKILL reg-/.test(f)), `no agent was killed: ${report.faults.join(', ')}`);
  assert.ok(report.faults.length >= 3, `only ${report.faults.length} faults`);
  assert.ok(report.model.deleted >= 10 && report.model.live >= 20, `too little load: ${JSON.stringify(report.model)}`);
  assert.ok(report.subscribers.connections > 9, 'subscribers reconnected after restarts');
});
