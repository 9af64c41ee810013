// The short chaos run of `npm test` (issue 3, item 7): 6 real agents and a real hub behind fault
// proxies for 45 s on two fixed seeds, then the harness's checks. A failure prints the seed, the
// failing checks and the replay command; the run's JSON report is kept in chaos/results/ and its
// data and logs in the temp dir it names.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { formatReport, writeReport } from '../../chaos/report.js';
import { runChaos } from '../../chaos/run.js';

// Both seeds plan every fault kind within 45 s (hub kills and unit partitions included).
const SEEDS = [20261122, 11];

for (const seed of SEEDS) {
  test(`chaos: 6 agents x 45 s, seed ${seed}`, { timeout: 170_000 }, async () => {
    const report = await runChaos({ agents: 6, units: 3, durationS: 45, seed, keep: false, convergeTimeoutS: 45 });
    writeReport(resolve(import.meta.dirname, `../../chaos/results/test-seed-${seed}.json`), report);
    const summary = formatReport(report);
    console.log(summary);
    assert.equal(report.error, undefined, summary);
    assert.deepEqual(report.violations, [], summary);
    assert.ok(report.pass, summary);
    // A run that injected (almost) nothing would pass anything.
    for (const [kind, c] of Object.entries(report.faults.counts)) assert.ok(c.done >= 1, `no ${kind} was injected`);
    const injected = Object.values(report.faults.counts).reduce((n, c) => n + c.done, 0);
    assert.ok(injected >= 20, `only ${injected} faults injected`);
  });
}
