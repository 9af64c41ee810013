import { createHash } from 'node:crypto';
import type { Device, DeviceCredential, DeviceModel } from '../../shared/api/device.js';
import type { DesiredCache } from '../cache/desired-cache.js';
import { verifyPassword } from './password.js';

const VERIFIED_TTL_MS = 60_000;

export type AuthResult = { ok: true; device: string } | { ok: false; reason: 'bad-credentials' | 'not-bound' };

/**
 * The devices whose MQTT home this agent is (bound to its node, or to its unit), with their models
 * and credentials, as the cache holds them. `refresh()` after every applied sync.
 */
export class DeviceDirectory {
  private devices = new Map<string, Device>();
  private models = new Map<string, DeviceModel>();
  private credentials = new Map<string, DeviceCredential>();
  /** sha256(username, password, stored hash) -> expiry: a rotated hash invalidates it. */
  private readonly verified = new Map<string, number>();

  constructor(private readonly cache: DesiredCache, private readonly home: { node: string; unit: string }, private readonly now: () => number = Date.now) {}

  refresh(): void {
    this.devices = new Map(this.cache.list<Device>('Device').filter((d) => this.isHome(d)).map((d) => [d.metadata.name, d]));
    this.models = new Map(this.cache.list<DeviceModel>('DeviceModel').map((m) => [m.metadata.name, m]));
    this.credentials = new Map(this.cache.list<DeviceCredential>('DeviceCredential').map((c) => [c.spec.username, c]));
  }

  private isHome(d: Device): boolean {
    return d.spec.node !== undefined ? d.spec.node === this.home.node : d.spec.unit === this.home.unit;
  }

  device(name: string): Device | undefined {
    return this.devices.get(name);
  }

  all(): Device[] {
    return [...this.devices.values()];
  }

  modelOf(device: Device): DeviceModel | undefined {
    return this.models.get(device.spec.model);
  }

  async authenticate(username: string, password: string): Promise<AuthResult> {
    const cred = this.credentials.get(username);
    if (!cred) return { ok: false, reason: 'bad-credentials' };
    const key = createHash('sha256').update(`${username}\0${password}\0${cred.spec.passwordHash}`).digest('hex');
    const until = this.verified.get(key);
    const now = this.now();
    if (until === undefined || until < now) {
      if (!(await verifyPassword(password, cred.spec.passwordHash))) return { ok: false, reason: 'bad-credentials' };
      if (this.verified.size > 10_000) this.verified.clear();
      this.verified.set(key, now + VERIFIED_TTL_MS);
    }
    // Looked up after the (async) verification: the device may have moved meanwhile.
    const current = this.credentials.get(username);
    if (current?.spec.passwordHash !== cred.spec.passwordHash) return { ok: false, reason: 'bad-credentials' };
    return this.devices.has(cred.spec.device) ? { ok: true, device: cred.spec.device } : { ok: false, reason: 'not-bound' };
  }
}
