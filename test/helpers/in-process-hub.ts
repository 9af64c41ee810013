// A hub in this process (real SQLite files, real sockets on port 0), for API and protocol tests
// that need no process boundary.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startHub, type RunningHub } from '../../cloud-hub/hub.js';
import { silentLogger } from '../../shared/logger.js';

export interface HubFixture {
  hub: RunningHub;
  dir: string;
  api<T = unknown>(method: string, path: string, body?: unknown, init?: { token?: string; contentType?: string }): Promise<{ status: number; body: T }>;
  join(token: string, node: string): Promise<{ credential: string; unit: string }>;
  close(): Promise<void>;
}

export async function startTestHub(): Promise<HubFixture> {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-hub-'));
  const hub = await startHub({ dataDir: join(dir, 'hub'), host: '127.0.0.1', port: 0, pingIntervalMs: 500, readDeadlineMs: 3000 }, silentLogger());
  const api: HubFixture['api'] = async (method, path, body, init = {}) => {
    const res = await fetch(`${hub.url}${path}`, {
      method,
      headers: { Authorization: `Bearer ${init.token ?? hub.adminToken}`, 'Content-Type': init.contentType ?? 'application/json' },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : undefined) as never };
  };
  return {
    hub,
    dir,
    api,
    async join(token, node) {
      const res = await fetch(`${hub.url}/agent/v1/join`, { method: 'POST', body: JSON.stringify({ token, node }), headers: { 'Content-Type': 'application/json' } });
      if (res.status !== 201) throw new Error(`join failed: ${res.status} ${await res.text()}`);
      return (await res.json()) as { credential: string; unit: string };
    },
    async close() {
      await hub.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
