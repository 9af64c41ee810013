import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EdgeApp } from '../../shared/api/index.js';
import { OutpostError } from '../../shared/errors.js';
import { HubClient, API_PREFIX } from '../client.js';
import { playgroundDir } from '../config.js';
import { applyCommand } from './resources.js';
import { tokenCreateCommand } from './tokens.js';

// cli/commands/ in the sources, dist/cli/commands/ in the compiled build (bin/outpost.js).
const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = existsSync(join(here, '../../bin/outpost.js')) ? resolve(here, '../..') : resolve(here, '../../..');
const bin = join(repoRoot, 'bin/outpost.js');
const AGENTS = [
  { name: 'edge-a1', unit: 'site-a', labels: 'zone=north' },
  { name: 'edge-b1', unit: 'site-b', labels: 'zone=south' },
];

async function waitFor<T>(what: string, fn: () => T | undefined | Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new OutpostError('UNAVAILABLE', `timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** `npm start`: a hub, two agents in two units, the sample app; Ctrl-C stops them all. */
export async function playgroundCommand(o: { data?: string }): Promise<void> {
  const dir = o.data ? resolve(o.data) : playgroundDir();
  const logs = join(dir, 'logs');
  mkdirSync(logs, { recursive: true });
  const children: { name: string; child: ChildProcess }[] = [];
  const start = (name: string, args: string[]) => {
    const out = openSync(join(logs, `${name}.log`), 'a');
    // Own process group: a terminal's Ctrl-C reaches only the playground, which then stops the
    // agents (and their instances) before the hub, in order, instead of everything at once.
    const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', out, out], detached: true });
    children.push({ name, child });
    child.on('exit', (code, signal) => {
      if (!stopping) {
        process.stderr.write(`${name} exited unexpectedly (${signal ?? `code ${code}`}); see ${join(logs, `${name}.log`)}\n`);
        void stopAll(1);
      }
    });
    return child;
  };
  let stopping = false;
  const stopAll = async (code: number) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write('\nstopping agents and hub...\n');
    // Agents first (they stop their instances), then the hub.
    for (const group of [children.filter((c) => c.name !== 'hub'), children.filter((c) => c.name === 'hub')]) {
      await Promise.all(group.map(({ child }) => new Promise<void>((res) => {
        if (child.exitCode !== null || child.signalCode !== null) return res();
        const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
        child.once('exit', () => { clearTimeout(t); res(); });
        child.kill('SIGTERM');
      })));
    }
    process.stdout.write(`stopped. Data kept in ${dir}; run npm start again to resume, or delete it to start over.\n`);
    process.exit(code);
  };
  process.on('SIGINT', () => void stopAll(0));
  process.on('SIGTERM', () => void stopAll(0));

  const hubDir = join(dir, 'hub');
  rmSync(join(hubDir, 'hub.json'), { force: true });
  const hub = start('hub', ['hub', '--listen', '127.0.0.1:0', '--data', hubDir]);
  const info = await waitFor('the hub to listen', () => {
    const f = join(hubDir, 'hub.json');
    if (!existsSync(f)) return undefined;
    const parsed = JSON.parse(readFileSync(f, 'utf8')) as { url: string; pid: number; adminTokenFile: string };
    return parsed.pid === hub.pid ? parsed : undefined;
  }, 30_000);
  const client = new HubClient({ server: info.url, token: readFileSync(info.adminTokenFile, 'utf8').trim(), source: 'playground' });

  for (const line of await applyCommand(client, [join(repoRoot, 'examples/units.yaml')])) process.stdout.write(`${line}\n`);
  for (const a of AGENTS) {
    const agentDir = join(dir, 'agents', a.name);
    // Two agents on one machine: each broker on a free port (see `outpost agent status`).
    const args = ['agent', '--hub', info.url, '--name', a.name, '--data', agentDir, '--labels', a.labels, '--stop-instances-on-exit', '--mqtt-listen', '127.0.0.1:0', '--peer-listen', '127.0.0.1:0'];
    if (!existsSync(join(agentDir, 'credential.json'))) args.push('--token', await tokenCreateCommand(client, { unit: a.unit, ttl: '10m', uses: '1' }));
    start(a.name, args);
  }
  for (const line of await applyCommand(client, [join(repoRoot, 'examples/hello-app.yaml')])) process.stdout.write(`${line}\n`);
  await waitFor('the sample app to be ready on both units', async () => {
    const app = await client.request<EdgeApp>('GET', `${API_PREFIX}/edgeapps/hello`);
    const units = app.status?.units ?? [];
    return units.length === 2 && units.every((u) => u.ready === u.desired) ? true : undefined;
  }, 60_000);

  const cmd = (s: string) => `    ${s}`;
  process.stdout.write([
    '',
    'Outpost playground is running: a hub, agents edge-a1 (unit site-a) and edge-b1 (unit site-b),',
    'and the sample app "hello" (examples/hello-app.yaml) on both units.',
    '',
    `  hub URL:      ${info.url}`,
    `  admin token:  ${info.adminTokenFile}`,
    `  data:         ${dir}  (process logs in ${logs})`,
    '',
    'Try, in another terminal in this directory:',
    cmd('npx outpost get nodes'),
    cmd('npx outpost get apps'),
    cmd('npx outpost describe app hello'),
    '',
    'Ctrl-C stops everything.',
    '',
  ].join('\n'));
}
