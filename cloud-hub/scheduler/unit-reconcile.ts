import type { AppRevision, AppTemplate, EdgeApp, EdgeNode, Instance, InstanceSpec, NodeUnit, UnitAppStatus } from '../../shared/api/index.js';
import { shortHash } from '../../shared/hash.js';
import { requestsOf } from './placement-fit.js';
import { instanceName, pickNode, type NodeUsage } from './placement.js';
import { notAvailableWhy, runsSpecReady, targetAvailability } from './rollout-available.js';
import { advanceMark, DEFAULT_PROGRESS_DEADLINE_SECONDS, rolloutPhase, type ProgressMark } from './rollout-phase.js';
import { planStep, rolloutBudget, type Slot } from './rollout-plan.js';
import { instanceHash, instanceTemplate, unitVariant } from './variants.js';

export interface UnitInput {
  app: EdgeApp;
  unitName: string;
  unit: NodeUnit | undefined;
  /** The nodes of the unit (EdgeNode.spec.unit). */
  nodes: EdgeNode[];
  /** This app's instances in this unit. */
  instances: Instance[];
  /** The app's current revision number. */
  revision: number;
  /** The app's AppRevisions: a unit that takes no steps creates instances at the revision it last completed. */
  revisions: AppRevision[];
  /** Hash of the EdgeConfigs a template uses ('' when none or when the app does not restart on config change). */
  configsHash: (template: AppTemplate) => string;
  /** Placement bookkeeping of the whole pass (all apps): updated as instances are placed. */
  usage: NodeUsage;
  /** The app that owns an instance name, when it exists. */
  ownerOf: (name: string) => string | undefined;
  now: number;
  /** The unit's progress mark from the previous pass (undefined after a hub restart). */
  prevProgress: ProgressMark | undefined;
}

export interface UnitResult {
  /** Desired specs of the instances to create or update (compare before writing). */
  specs: Map<string, InstanceSpec>;
  /** Instance names this unit keeps (everything else of the app in the unit goes). */
  keep: Set<string>;
  status: UnitAppStatus;
  progress: ProgressMark | undefined;
  /** When the unit needs a pass even if nothing changes (its deadline, an instance becoming available), ms since epoch. */
  wakeAt?: number;
  problems: string[];
}

/** One revision of the app rendered for the unit. */
interface Rendering {
  unitTemplate: AppTemplate;
  revision: number;
  /** What an instance on `node` runs. */
  at: (node: string) => { template: AppTemplate; templateHash: string };
}

function rendering(unitTemplate: AppTemplate, configs: string, revision: number): Rendering {
  return {
    unitTemplate, revision,
    at: (node) => {
      const template = instanceTemplate(unitTemplate, node);
      return { template, templateHash: instanceHash(template, configs) };
    },
  };
}

/**
 * One unit of one app: placement of missing and homeless instances, one rollout step, and the
 * unit's status. Pure apart from `usage`; the scheduler does the writes.
 */
export function reconcileUnit(u: UnitInput): UnitResult {
  const { app, unitName, nodes, usage } = u;
  const appName = app.metadata.name;
  const specs = new Map<string, InstanceSpec>();
  const keep = new Set<string>();
  const problems: string[] = [];
  const variant = unitVariant(app, unitName, u.unit);
  const prev = app.status?.units?.find((s) => s.unit === unitName);
  if (!variant.ok) return unrenderable(u, prev, variant.message);
  const { replicas, template: unitTemplate } = variant;
  const configs = u.configsHash(unitTemplate);
  const targetHash = shortHash({ template: unitTemplate, configs });
  const target = rendering(unitTemplate, configs, u.revision);
  const nodeByName = new Map(nodes.map((n) => [n.metadata.name, n]));
  const cordoned = u.unit?.spec?.cordon === true;
  const place = (template: AppTemplate): string => {
    const pick = pickNode({ unit: unitName, cordoned, nodes, app: appName, template, usage });
    if (pick.reason !== undefined) problems.push(pick.reason);
    return pick.node;
  };

  // Homeless instances first: a node that is gone, left the unit, or is Down while another node fits.
  const current = new Map<number, Instance>();
  const nodeOf = new Map<string, string>();
  for (const i of [...u.instances].sort((a, b) => a.spec.index - b.spec.index)) {
    let node = i.spec.node;
    const n = node ? nodeByName.get(node) : undefined;
    if (node && (!n || n.status?.phase === 'Down')) {
      usage.add(node, appName, requestsOf(i.spec.template), -1);
      const to = place(i.spec.template);
      if (to || !n) node = to;
      else usage.add(node, appName, requestsOf(i.spec.template)); // Down, but nowhere to go: stays
    } else if (!node) {
      node = place(i.spec.template);
    }
    nodeOf.set(i.metadata.name, node);
    current.set(i.spec.index, i);
  }
  const moved = (i: Instance) => nodeOf.get(i.metadata.name) !== i.spec.node;
  const atTarget = (i: Instance) => i.spec.templateHash === target.at(i.spec.node).templateHash;

  const minReady = app.spec.rollout?.minReadySeconds ?? 0;
  let wakeAt: number | undefined;
  const slots: Slot[] = [...current.values()].map((i) => {
    let available = false;
    if (!moved(i) && i.spec.node) {
      if (!atTarget(i)) available = runsSpecReady(i);
      else {
        const a = targetAvailability(i, minReady, u.now);
        if (a.at !== undefined) wakeAt = Math.min(wakeAt ?? Infinity, a.at);
        available = a.available;
      }
    }
    return { index: i.spec.index, atTarget: atTarget(i), available };
  });
  const primaries = slots.filter((s) => s.index < replicas);
  const allAtTarget = primaries.length === replicas && primaries.every((s) => s.atTarget);
  const done = allAtTarget && primaries.every((s) => s.available) && slots.length === replicas;
  const updatedCount = slots.filter((s) => s.atTarget).length;
  const updatedAvailable = slots.filter((s) => s.atTarget && s.available).length;
  const progress = advanceMark(u.prevProgress, { rollout: `${u.revision}/${targetHash}`, updated: updatedCount, available: updatedAvailable });
  const phase = rolloutPhase({
    now: u.now, revision: u.revision, prev, done, allAtTarget, paused: app.spec.rollout?.paused === true,
    hasReadyNode: nodes.some((n) => n.status?.phase === 'Ready'),
    progressed: progress.progressed, targetHash,
    deadlineSeconds: app.spec.rollout?.progressDeadlineSeconds ?? DEFAULT_PROGRESS_DEADLINE_SECONDS,
    describeStuck: () => describeStuck(u.instances, replicas, updatedCount, updatedAvailable, (i) => atTarget(i) && !slots.find((s) => s.index === i.spec.index)?.available, minReady),
  });
  if (phase.deadlineAt !== undefined) wakeAt = Math.min(wakeAt ?? Infinity, phase.deadlineAt);

  const plan = planStep({ replicas, budget: rolloutBudget(app.spec.rollout, replicas), slots, steps: phase.steps });
  // A unit that takes no steps (Paused, Failed) creates and moves instances at the revision it last
  // completed, not at the target it is not rolling to.
  const base = phase.steps ? target : (completedRendering(u, prev) ?? target);
  const specFor = (index: number, node: string, r: Rendering): InstanceSpec => ({ app: appName, unit: unitName, node, index, ...r.at(node), revision: r.revision });
  const deleting = new Set(plan.delete);
  for (const [index, i] of current) {
    if (deleting.has(index)) continue;
    const name = i.metadata.name;
    keep.add(name);
    const node = nodeOf.get(name) ?? i.spec.node;
    let next: InstanceSpec | undefined;
    if (plan.update.includes(index)) next = specFor(index, node, target);
    else if (moved(i)) next = specFor(index, node, base); // a move replaces the process anyway
    else if (atTarget(i) && i.spec.revision !== u.revision) next = { ...i.spec, revision: u.revision }; // bookkeeping only: same template, renumbered revision
    if (!next) continue;
    if (node && next.templateHash !== i.spec.templateHash) {
      usage.add(node, appName, requestsOf(i.spec.template), -1);
      usage.add(node, appName, requestsOf(next.template));
    }
    specs.set(name, next);
  }
  for (const index of plan.create) {
    const name = instanceName(appName, unitName, index);
    const owner = u.ownerOf(name);
    if (owner !== undefined && owner !== appName) {
      // `${app}-${unit}-${i}` can collide (app "web" in unit "eu-x" vs app "web-eu" in unit "x").
      problems.push(`instance name ${name} is taken by app ${owner}; rename this app or the unit`);
      continue;
    }
    keep.add(name);
    specs.set(name, specFor(index, place(base.unitTemplate), base)); // surge instances are created only while stepping: base is the target then
  }

  // Counts from what the instances will be asked to run, with what they last reported.
  let scheduled = 0; let ready = 0; let updated = 0; let available = 0;
  const byName = new Map(u.instances.map((x) => [x.metadata.name, x]));
  for (const name of keep) {
    const i = byName.get(name);
    const spec = specs.get(name) ?? i?.spec;
    if (!spec) continue;
    const fresh = !i || i.spec.node !== spec.node;
    const st = fresh ? undefined : i.status;
    const running = st?.templateHash === spec.templateHash;
    if (spec.node) scheduled++;
    if (st?.ready) ready++;
    if (running && spec.templateHash === target.at(spec.node).templateHash) updated++;
    if (running && st.ready) available++;
  }
  const message = phase.message ?? problems[0];
  const status: UnitAppStatus = {
    unit: unitName, desired: replicas, scheduled, ready, updated, available,
    ...(phase.completedRevision !== undefined ? { revision: phase.completedRevision } : {}),
    updateRevision: u.revision, rollout: phase.phase, progressAt: phase.progressAt, targetHash,
    ...(message ? { message: message.slice(0, 2048) } : {}),
  };
  return { specs, keep, status, progress: progress.mark, ...(wakeAt !== undefined ? { wakeAt } : {}), problems };
}

/** The revision the unit last completed, rendered for it; undefined when it is the target's revision or no longer kept. */
function completedRendering(u: UnitInput, prev: UnitAppStatus | undefined): Rendering | undefined {
  const n = prev?.revision;
  if (n === undefined || n === u.revision) return undefined;
  const r = u.revisions.find((x) => x.spec.revision === n);
  if (!r) return undefined;
  const v = unitVariant({ ...u.app, spec: { ...u.app.spec, template: r.spec.template, overrides: r.spec.overrides ?? [] } }, u.unitName, u.unit);
  return v.ok ? rendering(v.template, u.configsHash(v.template), n) : undefined;
}

/**
 * A unit whose variant cannot be rendered (an override patch that does not apply to it): its
 * instances are left as they are and its rollout is Failed with the reason, until the app changes.
 * No targetHash: whatever renders next is a new rollout.
 */
function unrenderable(u: UnitInput, prev: UnitAppStatus | undefined, why: string): UnitResult {
  const keep = new Set(u.instances.map((i) => i.metadata.name));
  const message = why.slice(0, 2048);
  const failedBefore = prev?.rollout === 'Failed' && prev.updateRevision === u.revision && prev.targetHash === undefined && prev.message === message;
  const status: UnitAppStatus = {
    unit: u.unitName, desired: prev?.desired ?? u.instances.length,
    scheduled: u.instances.filter((i) => i.spec.node).length,
    ready: u.instances.filter((i) => i.status?.ready).length,
    updated: 0, available: u.instances.filter(runsSpecReady).length,
    ...(prev?.revision !== undefined ? { revision: prev.revision } : {}),
    updateRevision: u.revision, rollout: 'Failed',
    progressAt: (failedBefore && prev.progressAt) || new Date(u.now).toISOString(), message,
  };
  return { specs: new Map(), keep, status, progress: u.prevProgress, problems: [why] };
}

function describeStuck(instances: Instance[], replicas: number, updated: number, updatedAvailable: number, stuck: (i: Instance) => boolean, minReady: number): string {
  const first = instances.filter(stuck).sort((a, b) => a.spec.index - b.spec.index)[0];
  const why = first ? `; ${first.metadata.name}: ${notAvailableWhy(first, minReady)}` : '';
  return `${updated} of ${replicas} instances updated, ${updatedAvailable} ready on the new revision${why}`;
}
