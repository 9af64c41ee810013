import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AppTemplate, InstanceStatus } from '../../shared/api/index.js';
import type { DesiredInstance, RuntimeEvent } from '../../edge-agent/runtime/types.js';
import { WorkloadRuntime, type AgentInstance, type ConfigResolver, type InstanceRuntime } from '../../edge-agent/runtime/workload-runtime.js';

/** Records what the router hands the process runtime. */
class RecordingRuntime implements InstanceRuntime<DesiredInstance> {
  last: DesiredInstance[] = [];
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  async stopAllInstances(): Promise<void> {}
  reconcile(desired: DesiredInstance[]): void { this.last = desired; }
  onStatus(_l: (name: string, status: InstanceStatus) => void): void {}
  onEvent(_l: (event: RuntimeEvent) => void): void {}
  running = new Map<string, InstanceStatus>();
  statuses(): Map<string, InstanceStatus> { return new Map(this.running); }
}

const withConfig: AppTemplate = { processes: [{ command: 'sleep', args: ['9'], envFrom: [{ config: 'cfg' }], configMounts: [{ config: 'cfg' }] }] };
const inst = (hash: string): AgentInstance => ({ name: 'a-u-0', template: withConfig, templateHash: hash, unit: 'u' });

test('routing: process templates flattened with config env, dirs and OUTPOST_UNIT; containers without a runtime fail with the reason', () => {
  const procs = new RecordingRuntime();
  const resolver: ConfigResolver = { resolve: () => ({ env: { LEVEL: 'info' }, dirs: { cfg: '/data/configs/cfg' } }) };
  const rt = new WorkloadRuntime(procs, undefined, resolver, 'no Docker or Podman socket');
  const statuses: Array<[string, InstanceStatus]> = [];
  rt.onStatus((n, s) => statuses.push([n, s]));
  rt.reconcile([inst('h1'), { name: 'cam-u-0', template: { containers: [{ image: 'x' }] }, templateHash: 'c1' }]);
  assert.deepEqual(procs.last.map((d) => d.name), ['a-u-0']);
  assert.deepEqual(procs.last[0]?.template.env, { OUTPOST_CONFIG_DIR_CFG: '/data/configs/cfg' });
  // Config values travel apart: the process gets them, runtime.db never stores them.
  assert.deepEqual(procs.last[0]?.template.configEnv, { OUTPOST_UNIT: 'u', LEVEL: 'info' });
  assert.deepEqual(statuses.map(([n, s]) => [n, s.phase, s.message]), [['cam-u-0', 'Failed', 'no Docker or Podman socket']]);
});

test('a config that disappears under a running instance does not stop it; a new template without its config fails', () => {
  const procs = new RecordingRuntime();
  let present = true;
  const resolver: ConfigResolver = {
    resolve: () => {
      if (!present) throw new Error('EdgeConfig "cfg" is not on this node');
      return { env: {}, dirs: { cfg: '/data/configs/cfg' } };
    },
  };
  const rt = new WorkloadRuntime(procs, undefined, resolver);
  const kept: string[] = [];
  rt.onKept = (name) => kept.push(name);
  rt.reconcile([inst('h1')]);
  present = false;
  rt.reconcile([inst('h1')]);
  assert.deepEqual(procs.last.map((d) => d.name), ['a-u-0'], 'still desired: the process keeps running');
  assert.deepEqual(kept, ['a-u-0']);
  assert.ok(rt.configDirsInUse().has('/data/configs/cfg'), 'its files are not pruned');
  rt.reconcile([inst('h2')]);
  assert.deepEqual(procs.last, [], 'a changed template cannot start without its config');
  assert.equal(rt.statuses().get('a-u-0')?.phase, 'Failed');
  assert.match(rt.statuses().get('a-u-0')?.message ?? '', /cfg/);
});

test('after an agent restart (nothing remembered), a running instance whose config cannot be resolved is kept, not stopped', () => {
  const procs = new RecordingRuntime();
  procs.running.set('a-u-0', { phase: 'Running', ready: true, restarts: 0, templateHash: 'h1', pid: 42 });
  const resolver: ConfigResolver = { resolve: () => { throw new Error('cannot decrypt secret "PASSWORD"'); } };
  const rt = new WorkloadRuntime(procs, undefined, resolver);
  const kept: string[] = [];
  rt.onKept = (name) => kept.push(name);
  rt.reconcile([inst('h1')]);
  assert.deepEqual(procs.last.map((d) => [d.name, d.templateHash, d.keep]), [['a-u-0', 'h1', true]]);
  assert.deepEqual(kept, ['a-u-0']);
  // What runs is another template: nothing to keep, and the new one cannot start.
  rt.reconcile([inst('h2')]);
  assert.deepEqual(procs.last, []);
});
