// Agent-side tunnel target checks (issue 8 review): a stream reaches only an instance's own ports.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Instance, InstanceStatus } from '../../shared/api/index.js';
import { isOutpostError } from '../../shared/errors.js';
import { TunnelTargets } from '../../edge-agent/tunnel/tunnel-targets.js';

function containerInstance(name: string, template: Record<string, unknown>): Instance {
  return { apiVersion: 'outpost.dev/v1alpha1', kind: 'Instance', metadata: { name }, spec: { app: 'cam', unit: 'u', node: 'n', template } } as unknown as Instance;
}

function targetsWith(instance: Instance): TunnelTargets {
  const running = new Map<string, InstanceStatus>([[instance.metadata.name, { phase: 'Running' } as InstanceStatus]]);
  return new TunnelTargets({ instances: () => [instance], statuses: () => running }, { allow: ['10.0.0.5:502'] });
}

const forbidden = (err: unknown) => isOutpostError(err) && err.code === 'OUTPOST_FORBIDDEN';

test('hostNetwork container: only a declared TCP containerPort, not any port of the node', () => {
  const targets = targetsWith(containerInstance('cam-0', {
    hostNetwork: true,
    containers: [{ image: 'localhost/cam:1', ports: [{ containerPort: 8080 }, { containerPort: 9000, protocol: 'UDP' }] }],
  }));
  assert.deepEqual(targets.dialAddress({ instance: 'cam-0', port: 8080 }), { host: '127.0.0.1', port: 8080 });
  assert.throws(() => targets.dialAddress({ instance: 'cam-0', port: 7070 }), forbidden, 'an undeclared port (the agent local API, say)');
  assert.throws(() => targets.dialAddress({ instance: 'cam-0', port: 9000 }), forbidden, 'a UDP port');
});

test('published container port and the allow list', () => {
  const targets = targetsWith(containerInstance('cam-0', { containers: [{ image: 'localhost/cam:1', ports: [{ containerPort: 80, hostPort: 18080 }] }] }));
  assert.deepEqual(targets.dialAddress({ instance: 'cam-0', port: 80 }), { host: '127.0.0.1', port: 18080 });
  assert.throws(() => targets.dialAddress({ instance: 'cam-0', port: 18080 }), forbidden);
  assert.deepEqual(targets.dialAddress({ address: '10.0.0.5:502' }), { host: '10.0.0.5', port: 502 });
  assert.throws(() => targets.dialAddress({ address: '10.0.0.5:22' }), forbidden);
});
