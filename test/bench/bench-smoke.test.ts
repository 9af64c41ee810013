// Every bench scenario of issue 7, run with tiny numbers as `npm run bench` runs it (a child
// process with a deadline), so that none rots: the report must be well formed, every
// correctness check must pass, and the headline must be the last line. No timing is asserted:
// figures live in bench/results, measured at full size.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { repoRoot } from '../helpers/cluster.js';
import { kubeSkipReason } from '../helpers/kube-apiserver.js';

const results = mkdtempSync(join(tmpdir(), 'outpost-bench-smoke-'));
after(() => rmSync(results, { recursive: true, force: true }));

function runBench(args: string[], deadlineMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    // Own process group, so that the deadline also ends the hub and fleet processes it started.
    const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'bench/main.ts'), ...args, '--results', results], { cwd: repoRoot, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = setTimeout(() => { try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ } }, deadlineMs);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

// [scenario, args, why it is skipped]: fanout-kube is opt-in (a real kube-apiserver, OUTPOST_TEST_KUBE_BIN_DIR).
const scenarios: [string, string[], string?][] = [
  ['sessions', ['--nodes', '20', '--duration', '3']],
  ['fanout', ['--nodes', '20', '--unit-size', '10', '--runs', '1']],
  ['reconnect-storm', ['--nodes', '20', '--unit-size', '10', '--observe', '2']],
  ['churn', ['--nodes', '20', '--unit-size', '10', '--duration', '4', '--join-rate', '5', '--update-interval', '1']],
  ['agent-footprint', ['--instances', '3', '--settle', '2', '--idle', '2', '--runs', '1']],
  ['fanout-kube', ['--nodes', '10', '--unit-size', '5', '--runs', '1', '--replicas', '2'], kubeSkipReason()],
];

for (const [scenario, args, skip] of scenarios) {
  void test(`bench ${scenario} (smoke size) writes a well-formed report whose checks pass`, { timeout: 150_000, ...(skip ? { skip } : {}) }, async () => {
    const r = await runBench([scenario, ...args], 140_000);
    assert.equal(r.code, 0, `exit ${r.code}\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`);
    const report = JSON.parse(readFileSync(join(results, `${scenario}.json`), 'utf8')) as {
      scenario: string; date: string; inputs: object; machine: { cpus: number }; figures: object; checks: Record<string, boolean>; targets: Record<string, { target: string }>; headline: string; hub?: { rssMaxBytes: number | null };
    };
    assert.equal(report.scenario, scenario);
    assert.ok(!Number.isNaN(Date.parse(report.date)));
    assert.ok(report.machine.cpus >= 1 && Object.keys(report.inputs).length > 0 && Object.keys(report.figures).length > 0);
    assert.ok(Object.keys(report.checks).length > 0 && Object.keys(report.targets).length > 0);
    for (const [name, ok] of Object.entries(report.checks)) assert.equal(ok, true, `check ${name} failed\n${r.stdout.slice(-3000)}`);
    if (scenario !== 'agent-footprint') assert.ok((report.hub?.rssMaxBytes ?? 0) > 0, 'hub RSS was sampled');
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines[lines.length - 1], report.headline, 'the headline is the last line');
    assert.ok(report.headline.startsWith(scenario));
  });
}
