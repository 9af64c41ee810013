// What the registry must hold, built only from acknowledged operations, and the checks of a run
// against it. A registration or deregistration whose answer never came (timeout, agent killed)
// is uncertain: it may or may not have happened, so the checks accept either outcome for it.
import type { CheckResult } from '../checks.js';

export type KeyState = 'live' | 'deleted' | 'uncertain';

export interface ModelEntry {
  key: string;
  service: string;
  origin: string;
  state: KeyState;
  /** Ports the instance may have now: the last acknowledged one, plus any unacknowledged update since. */
  ports: Set<number>;
}

/** One instance as a subscriber or a final lookup saw it. */
export interface SeenInstance {
  id: string;
  port: number;
  health: string;
  version?: { incarnation: number; counter: number };
}

/** One SSE event of one subscriber connection. */
export interface WatchEvent {
  index: number;
  at: number;
  instances: SeenInstance[];
}

/** One subscriber: (agent, service), each reconnect a new connection; `opened` when each began. */
export interface Subscriber {
  agent: string;
  service: string;
  connections: Array<{ opened: number; events: WatchEvent[] }>;
}

export class RegistryModel {
  readonly entries = new Map<string, ModelEntry>();
  /** When each key was first acknowledged live (ms): an own record registered before a watch opened must be in its first snapshot. */
  readonly ackedAt = new Map<string, number>();

  register(origin: string, service: string, id: string, port: number, acked: boolean, at: number): void {
    const key = `${service}/${id}`;
    const cur = this.entries.get(key);
    if (!cur) {
      this.entries.set(key, { key, service, origin, state: acked ? 'live' : 'uncertain', ports: new Set([port]) });
      if (acked) this.ackedAt.set(key, at);
      return;
    }
    if (acked) {
      cur.ports = new Set([port]);
      if (cur.state === 'uncertain') cur.state = 'live';
      if (!this.ackedAt.has(key)) this.ackedAt.set(key, at);
    } else {
      cur.ports.add(port);
    }
  }

  deregister(key: string, acked: boolean): void {
    const cur = this.entries.get(key);
    if (!cur) return;
    cur.state = acked ? 'deleted' : 'uncertain';
  }

  liveKeysOf(origin: string): string[] {
    return [...this.entries.values()].filter((e) => e.origin === origin && e.state === 'live').map((e) => e.key);
  }
}

/** Every agent's final answer against the model: no acknowledged live instance lost, none deleted back, nothing unknown. */
export function checkFinalViews(model: RegistryModel, views: Map<string, Map<string, SeenInstance>>): CheckResult[] {
  const lost: string[] = [];
  const resurrected: string[] = [];
  for (const [agent, view] of views) {
    for (const e of model.entries.values()) {
      const seen = view.get(e.key);
      if (e.state === 'live' && !seen) lost.push(`${agent}: ${e.key} (registered on ${e.origin}, acknowledged) is missing`);
      if (e.state === 'live' && seen && !e.ports.has(seen.port)) lost.push(`${agent}: ${e.key} has port ${seen.port}, acknowledged ${[...e.ports].join('|')}`);
      if (e.state === 'deleted' && seen) resurrected.push(`${agent}: ${e.key} (deregistration acknowledged) is back, version ${JSON.stringify(seen.version)}`);
    }
    for (const key of view.keys()) if (!model.entries.has(key)) resurrected.push(`${agent}: ${key} was never registered`);
  }
  return [
    { name: 'no acknowledged registration lost', pass: lost.length === 0, details: lost.slice(0, 20) },
    { name: 'no deregistered instance back', pass: resurrected.length === 0, details: resurrected.slice(0, 20) },
  ];
}

/**
 * The subscribers' histories: indexes grow within a connection; versions per key never go back
 * for one subscriber; within a connection an instance leaves a list only when it was deregistered
 * (a list is never partial) and never comes back once gone; the first list of a connection holds
 * every own instance of that agent acknowledged before the watch opened (never empty or partial).
 */
export function checkSubscribers(model: RegistryModel, subscribers: Subscriber[]): CheckResult[] {
  const indexes: string[] = [];
  const versions: string[] = [];
  const partial: string[] = [];
  const back: string[] = [];
  let events = 0;
  for (const s of subscribers) {
    const name = `${s.agent}/${s.service}`;
    const highest = new Map<string, { incarnation: number; counter: number }>();
    let previousLast = new Set<string>();
    s.connections.forEach((c, ci) => {
      let lastIndex = -1;
      let present = new Set<string>();
      const gone = new Set<string>();
      c.events.forEach((ev, ei) => {
        events++;
        if (ev.index <= lastIndex) indexes.push(`${name} connection ${ci}: index ${ev.index} after ${lastIndex}`);
        lastIndex = ev.index;
        const now = new Set<string>();
        for (const i of ev.instances) {
          const key = `${s.service}/${i.id}`;
          now.add(key);
          if (gone.has(key)) back.push(`${name} connection ${ci} event ${ei}: ${key} is listed again after it left`);
          const v = i.version;
          const h = highest.get(key);
          if (v && h && (v.incarnation < h.incarnation || (v.incarnation === h.incarnation && v.counter < h.counter))) {
            versions.push(`${name}: ${key} at (${v.incarnation},${v.counter}) after (${h.incarnation},${h.counter})`);
          }
          if (v && (!h || v.incarnation > h.incarnation || (v.incarnation === h.incarnation && v.counter > h.counter))) highest.set(key, v);
        }
        for (const key of present) {
          if (now.has(key)) continue;
          gone.add(key);
          if (model.entries.get(key)?.state === 'live') partial.push(`${name} connection ${ci} event ${ei}: ${key} left the list but was never deregistered`);
        }
        if (ei === 0) {
          // After a reconnect (the agent restarted), the first list holds what the last one did.
          for (const key of previousLast) {
            if (!now.has(key) && model.entries.get(key)?.state === 'live') partial.push(`${name} connection ${ci}: first list lacks ${key}, listed before the reconnect and never deregistered`);
          }
          for (const key of model.liveKeysOf(s.agent)) {
            if (!key.startsWith(`${s.service}/`)) continue;
            const acked = model.ackedAt.get(key);
            if (acked !== undefined && acked < c.opened && !now.has(key)) partial.push(`${name} connection ${ci}: first list lacks own ${key} (acknowledged before the watch opened)`);
          }
        }
        present = now;
      });
      previousLast = present;
    });
  }
  return [
    { name: 'watch indexes only grow', pass: indexes.length === 0, details: indexes.slice(0, 20) },
    { name: 'versions seen by each subscriber only grow', pass: versions.length === 0, details: versions.slice(0, 20) },
    { name: 'no empty or partial list pushed', pass: partial.length === 0, details: partial.slice(0, 20) },
    { name: 'no instance comes back in a watch', pass: back.length === 0, details: [...back.slice(0, 20), `${events} events checked`] },
  ];
}

/** p50 and max of per-agent convergence times; fails when any agent took longer than limitMs or never converged. */
export function checkConvergence(perAgentMs: Record<string, number | null>, limitMs: number): { check: CheckResult; p50Ms: number | null; maxMs: number | null } {
  const times = Object.values(perAgentMs).filter((v): v is number => v !== null).sort((a, b) => a - b);
  const never = Object.entries(perAgentMs).filter(([, v]) => v === null).map(([k]) => k);
  const p50Ms = times.length ? times[Math.floor((times.length - 1) / 2)]! : null;
  const maxMs = times.length ? times[times.length - 1]! : null;
  const details = [
    ...never.map((a) => `${a} did not converge`),
    ...Object.entries(perAgentMs).filter(([, v]) => v !== null && v > limitMs).map(([a, v]) => `${a} took ${v} ms (limit ${limitMs})`),
  ];
  return { check: { name: `every node converges within ${limitMs / 1000} s of the heal`, pass: details.length === 0, details: [...details, `p50 ${p50Ms ?? '-'} ms, max ${maxMs ?? '-'} ms`] }, p50Ms, maxMs };
}
