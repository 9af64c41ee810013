import { setTimeout as delay } from 'node:timers/promises';
import type { AnyObject, EdgeNode, Instance } from '../shared/api/index.js';
import { API } from './api.js';
import { httpLines } from './http.js';

/** Node phases that a unit whose autonomy policy is "never" may show. */
export const ALLOWED_PHASES = new Set(['Pending', 'Ready', 'Disconnected']);

export interface PhaseChange {
  node: string;
  phase: string;
  /** Harness clock, ms since epoch. */
  at: number;
}

/** What the hub asked of an instance at one point of its history (null: it did not exist). */
export interface InstanceVersion {
  node: string;
  uid: string;
  templateHash: string;
  gen: string;
}

/**
 * Watches EdgeNodes and Instances through the hub API for the whole run, across hub kills and
 * pauses: a broken watch resumes from the last resourceVersion it saw, so no change is missed
 * (the hub replays every change after it). From this it keeps every node phase ever shown and,
 * per instance, the sequence of (node, uid, template) versions the hub asked for: the desired
 * state changes that may legitimately start a process.
 */
export class Observer {
  readonly phases: PhaseChange[] = [];
  /** Instance name -> its versions in order; null entries are deletions. */
  readonly instanceHistory = new Map<string, (InstanceVersion | null)[]>();
  /** Times a watch had to re-list because its resourceVersion was compacted (history gap). */
  gaps = 0;
  reconnects = 0;
  private readonly abort = new AbortController();
  private readonly loops: Promise<void>[] = [];

  constructor(private readonly url: string, private readonly token: string) {}

  start(): void {
    this.loops.push(this.watch('edgenodes', (type, obj) => this.onNode(type, obj as EdgeNode)));
    this.loops.push(this.watch('instances', (type, obj) => this.onInstance(type, obj as Instance)));
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await Promise.all(this.loops);
  }

  /** The last phase seen per node. */
  lastPhases(): Map<string, string> {
    const out = new Map<string, string>();
    for (const p of this.phases) out.set(p.node, p.phase);
    return out;
  }

  private onNode(type: string, node: EdgeNode): void {
    if (type === 'DELETED') return;
    const phase = node.status?.phase ?? 'Pending';
    const name = node.metadata.name;
    const last = [...this.phases].reverse().find((p) => p.node === name);
    if (last?.phase !== phase) this.phases.push({ node: name, phase, at: Date.now() });
  }

  private onInstance(type: string, inst: Instance): void {
    const name = inst.metadata.name;
    const history = this.instanceHistory.get(name) ?? [];
    this.instanceHistory.set(name, history);
    const next: InstanceVersion | null =
      type === 'DELETED' ? null : { node: inst.spec.node, uid: inst.metadata.uid ?? '', templateHash: inst.spec.templateHash, gen: inst.spec.template.processes?.[0]?.env?.GEN ?? '' };
    const last = history.at(-1);
    const same = last === undefined ? next === null : last === null ? next === null : next !== null && last.node === next.node && last.uid === next.uid && last.templateHash === next.templateHash;
    if (!same) history.push(next);
  }

  private async watch(plural: string, onEvent: (type: string, obj: AnyObject) => void): Promise<void> {
    let rv: string | undefined;
    const signal = this.abort.signal;
    while (!signal.aborted) {
      try {
        const query = rv ? `watch=true&resourceVersion=${rv}` : 'watch=true';
        const status = await httpLines(`${this.url}${API}/${plural}?${query}`, {
          headers: { Authorization: `Bearer ${this.token}` },
          signal,
          onLine: (line) => {
            const e = JSON.parse(line) as { type: string; object: AnyObject };
            onEvent(e.type, e.object);
            if (e.object.metadata.resourceVersion) rv = e.object.metadata.resourceVersion;
          },
        });
        if (status === 410) {
          this.gaps++;
          rv = undefined;
          continue;
        }
      } catch {
        // hub killed, or a torn line: resume below from the last revision seen
      }
      if (signal.aborted) break;
      this.reconnects++;
      await delay(250, undefined, { signal }).catch(() => undefined);
    }
  }
}
