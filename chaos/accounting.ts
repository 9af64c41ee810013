import type { CrashRecord } from './faults.js';
import type { StartRecord } from './markers.js';
import type { InstanceVersion } from './observer.js';

/** Why one process start happened. */
export type StartCause = 'first' | 'template' | 'crash' | 'recreation';

/** The restart accounting of one instance on one node. */
export interface InstanceAccount {
  instance: string;
  node: string;
  starts: number;
  /** Attributed causes; they sum to `starts`. */
  causes: Record<StartCause, number>;
  /** Times the instance arrived on the node: created there, recreated (new uid) or placed there. */
  arrivals: number;
  /** Template changes the hub made while the instance stayed on the node (same uid). */
  templateChanges: number;
  /** Crashes the harness injected into processes of this instance on this node. */
  injectedCrashes: number;
  /** Starts that no cause explains; each is a violation. */
  unexplained: string[];
  /** When something is unexplained: the starts (node/gen/pid) and the hub's versions (node/uid/gen), for diagnosis. */
  evidence?: { starts: string[]; versions: string[] };
}

/**
 * Explains every process start of an instance on a node, or reports it as unexplained.
 *
 * Ground truth: the start lines the processes wrote themselves (markers.ts), in order, each with
 * its template generation (GEN) and pid; the hub's history of the instance from the watch (every
 * (node, uid, template) version it asked for); and the harness's own crash log (pids it killed).
 *
 * A start is legitimate only for one of these reasons, checked in this order against the start
 * before it on the same node:
 *   - crash: the previous process is one the harness SIGKILLed (restartPolicy Always restarts it);
 *   - template: it runs another GEN than the previous process (the template changed);
 *   - recreation: same GEN, no crash: the instance must have left the node and come back (deleted
 *     and created again with a new uid, e.g. replicas 2 -> 1 -> 2, or its unit deselected and
 *     selected again);
 *   - first: the first start of the instance on this node.
 * Everything else, above all a start with the same template after nothing but a reconnect, an
 * agent restart or a hub restart, is a restart the product must not do.
 *
 * Why bounds and not one equation: the identity
 *   starts == 1 + template changes + injected crashes + recreations
 * holds with the *attributed* counts by construction, but not with the counts of what the harness
 * did. Desired-state changes made while an agent is cut off reach it collapsed (three template
 * changes during a partition restart the process once; a change reverted meanwhile restarts it
 * not at all), and a crash injected into a process the agent is already stopping (template
 * changed, instance removed) causes no restart of its own. So the check is exact per start
 * (each start needs a cause, a crash is matched by pid and explains one start at most) and
 * bounded per instance: first + template + recreation starts <= the desired versions the hub
 * placed on the node (arrivals + template changes), and recreation starts <= arrivals - 1.
 * A restart by a reconnect alone has the same GEN and no crash, so it needs an arrival that did
 * not happen: it is always caught, unless the same instance really was recreated meanwhile
 * without the agent seeing it, a case the bound cannot tell apart (reported as a limit).
 */
export function accountInstance(
  instance: string,
  node: string,
  starts: StartRecord[],
  history: (InstanceVersion | null)[],
  crashes: CrashRecord[],
): InstanceAccount {
  let arrivals = 0;
  let templateChanges = 0;
  const desiredGens = new Set<string>();
  let prev: InstanceVersion | null = null;
  for (const v of history) {
    if (v && v.node === node) {
      desiredGens.add(v.gen);
      if (!prev || prev.node !== node || prev.uid !== v.uid) arrivals++;
      else if (prev.templateHash !== v.templateHash) templateChanges++;
    }
    prev = v;
  }
  const killed = new Set(crashes.filter((c) => c.instance === instance && c.node === node).map((c) => c.pid));
  const causes: Record<StartCause, number> = { first: 0, template: 0, crash: 0, recreation: 0 };
  const unexplained: string[] = [];
  starts.forEach((s, i) => {
    if (!desiredGens.has(s.gen)) unexplained.push(`pid ${s.pid} runs ${s.gen}, a template the hub never placed on ${node}`);
    const before = starts[i - 1];
    if (!before) causes.first++;
    else if (killed.has(before.pid)) causes.crash++;
    else if (before.gen !== s.gen) causes.template++;
    else causes.recreation++;
  });
  const versions = arrivals + templateChanges;
  const desiredStarts = causes.first + causes.template + causes.recreation;
  const overRecreation = Math.max(0, causes.recreation - Math.max(0, arrivals - 1));
  const overVersions = Math.max(0, desiredStarts - versions);
  if (overRecreation > 0) {
    const pids = starts.filter((s, i) => i > 0 && !killed.has(starts[i - 1]!.pid) && starts[i - 1]!.gen === s.gen).map((s) => s.pid);
    unexplained.push(`${causes.recreation} restart(s) with an unchanged template and no injected crash (pids ${pids.join(', ')}), but the instance arrived here only ${arrivals} time(s): restarted without cause`);
  }
  // Reported only beyond what the line above already counts, so one bad start is one violation.
  if (overVersions > overRecreation) {
    unexplained.push(`${desiredStarts} starts for desired-state changes, but the hub placed only ${versions} version(s) here (${arrivals} arrival(s), ${templateChanges} template change(s))`);
  }
  const account: InstanceAccount = { instance, node, starts: starts.length, causes, arrivals, templateChanges, injectedCrashes: killed.size, unexplained };
  if (unexplained.length) {
    account.evidence = {
      starts: starts.map((s) => `${s.node}/${s.gen}/${s.pid}${killed.has(s.pid) ? '/crashed' : ''}`),
      versions: history.map((v) => (v ? `${v.node || '<none>'}/${v.uid.slice(0, 8)}/${v.gen}` : 'deleted')),
    };
  }
  return account;
}
