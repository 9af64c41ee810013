import type { AppTemplate, EdgeApp, EdgeNode, Instance, InstanceSpec, NodeUnit, UnitAppStatus } from '../../shared/api/index.js';
import { shortHash } from '../../shared/hash.js';
import { requestsOf } from './placement-fit.js';
import { instanceName, pickNode, type NodeUsage } from './placement.js';
import { DEFAULT_PROGRESS_DEADLINE_SECONDS, rolloutPhase } from './rollout-phase.js';
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
  /** Hash of the EdgeConfigs a template uses ('' when none or when the app does not restart on config change). */
  configsHash: (template: AppTemplate) => string;
  /** Placement bookkeeping of the whole pass (all apps): updated as instances are placed. */
  usage: NodeUsage;
  /** The app that owns an instance name, when it exists. */
  ownerOf: (name: string) => string | undefined;
  now: number;
  prevProgressKey: string | undefined;
  /** The unit's target key of the previous pass (undefined after a hub restart). */
  prevTargetKey: string | undefined;
}

export interface UnitResult {
  /** Desired specs of the instances to create or update (compare before writing). */
  specs: Map<string, InstanceSpec>;
  /** Instance names this unit keeps (everything else of the app in the unit goes). */
  keep: Set<string>;
  status: UnitAppStatus;
  progressKey: string;
  /** What the unit rolls to: its rendered template and configs hash. */
  targetKey: string;
  /** When a Progressing unit would hit its deadline (ms since epoch). */
  deadlineAt?: number;
  problems: string[];
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
  if (!variant.ok) {
    for (const i of u.instances) keep.add(i.metadata.name);
    const ready = u.instances.filter((i) => i.status?.ready).length;
    const status: UnitAppStatus = { unit: unitName, desired: prev?.desired ?? u.instances.length, scheduled: u.instances.filter((i) => i.spec.node).length, ready, updated: 0, message: variant.message.slice(0, 2048) };
    return { specs, keep, status, progressKey: u.prevProgressKey ?? '', targetKey: u.prevTargetKey ?? '', problems: [variant.message] };
  }
  const { replicas, template: unitTemplate } = variant;
  const configs = u.configsHash(unitTemplate);
  const targetKey = shortHash({ template: unitTemplate, configs });
  const target = (node: string) => {
    const template = instanceTemplate(unitTemplate, node);
    return { template, templateHash: instanceHash(template, configs) };
  };
  const nodeByName = new Map(nodes.map((n) => [n.metadata.name, n]));
  const cordoned = u.unit?.spec?.cordon === true;
  const place = (): string => {
    const pick = pickNode({ unit: unitName, cordoned, nodes, app: appName, template: unitTemplate, usage });
    if (pick.reason !== undefined) problems.push(pick.reason);
    return pick.node;
  };
  const specFor = (index: number, node: string): InstanceSpec => ({ app: appName, unit: unitName, node, index, ...target(node), revision: u.revision });

  // Homeless instances first: a node that is gone, left the unit, or is Down while another node fits.
  const current = new Map<number, Instance>();
  for (const i of [...u.instances].sort((a, b) => a.spec.index - b.spec.index)) {
    const name = i.metadata.name;
    let node = i.spec.node;
    const n = node ? nodeByName.get(node) : undefined;
    if (node && (!n || n.status?.phase === 'Down')) {
      usage.add(node, appName, requestsOf(i.spec.template), -1);
      const to = place();
      if (to || !n) node = to;
      else usage.add(node, appName, requestsOf(i.spec.template)); // Down, but nowhere to go: stays
    } else if (!node) {
      node = place();
    }
    if (node !== i.spec.node) specs.set(name, specFor(i.spec.index, node));
    current.set(i.spec.index, i);
  }

  const targetHashOf = (i: Instance) => specs.get(i.metadata.name)?.templateHash ?? i.spec.templateHash;
  const slots: Slot[] = [...current.values()].map((i) => {
    const spec = specs.get(i.metadata.name) ?? i.spec;
    const moved = specs.has(i.metadata.name);
    return {
      index: i.spec.index,
      atTarget: targetHashOf(i) === target(spec.node).templateHash,
      available: !moved && !!spec.node && i.status?.ready === true && i.status.templateHash === i.spec.templateHash,
    };
  });
  const primaries = slots.filter((s) => s.index < replicas);
  const allAtTarget = primaries.length === replicas && primaries.every((s) => s.atTarget);
  const done = allAtTarget && primaries.every((s) => s.available) && slots.length === replicas;
  const updatedCount = slots.filter((s) => s.atTarget).length;
  const updatedAvailable = slots.filter((s) => s.atTarget && s.available).length;
  const progressKey = `${updatedCount}/${updatedAvailable}`;
  const phase = rolloutPhase({
    now: u.now, revision: u.revision, prev, done, allAtTarget, paused: app.spec.rollout?.paused === true,
    hasReadyNode: nodes.some((n) => n.status?.phase === 'Ready'),
    progressKey, prevProgressKey: u.prevProgressKey, targetChanged: u.prevTargetKey !== undefined && u.prevTargetKey !== targetKey,
    deadlineSeconds: app.spec.rollout?.progressDeadlineSeconds ?? DEFAULT_PROGRESS_DEADLINE_SECONDS,
    describeStuck: () => describeStuck(u.instances, replicas, updatedCount, updatedAvailable, (i) => targetHashOf(i) === target(i.spec.node).templateHash),
  });

  const plan = planStep({ replicas, budget: rolloutBudget(app.spec.rollout, replicas), slots, steps: phase.steps });
  const deleting = new Set(plan.delete);
  for (const [index, i] of current) {
    if (deleting.has(index)) continue;
    const name = i.metadata.name;
    keep.add(name);
    if (plan.update.includes(index)) {
      const next = specFor(index, i.spec.node);
      if (i.spec.node) {
        usage.add(i.spec.node, appName, requestsOf(i.spec.template), -1);
        usage.add(i.spec.node, appName, requestsOf(next.template));
      }
      specs.set(name, next);
    }
    else if (!specs.has(name) && targetHashOf(i) === target(i.spec.node).templateHash && i.spec.revision !== u.revision) {
      specs.set(name, { ...i.spec, revision: u.revision }); // bookkeeping only: same template, renumbered revision
    }
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
    specs.set(name, specFor(index, place()));
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
    if (running && spec.templateHash === target(spec.node).templateHash) updated++;
    if (running && st.ready) available++;
  }
  const status: UnitAppStatus = {
    unit: unitName, desired: replicas, scheduled, ready, updated, available,
    ...(phase.completedRevision !== undefined ? { revision: phase.completedRevision } : {}),
    updateRevision: u.revision, rollout: phase.phase, progressAt: phase.progressAt,
    ...(phase.message ?? (problems.length ? problems[0] : undefined) ? { message: (phase.message ?? problems[0] ?? '').slice(0, 2048) } : {}),
  };
  return { specs, keep, status, progressKey, targetKey, ...(phase.deadlineAt !== undefined ? { deadlineAt: phase.deadlineAt } : {}), problems };
}

function describeStuck(instances: Instance[], replicas: number, updated: number, updatedAvailable: number, atTarget: (i: Instance) => boolean): string {
  const stuck = instances.filter((i) => atTarget(i) && !(i.status?.ready && i.status.templateHash === i.spec.templateHash)).sort((a, b) => a.spec.index - b.spec.index)[0];
  const why = stuck ? `; ${stuck.metadata.name}: ${stuck.spec.node ? `${stuck.status?.phase ?? 'Pending'}, not ready${stuck.status?.message ? ` (${stuck.status.message})` : ''}` : 'not placed'}` : '';
  return `${updated} of ${replicas} instances updated, ${updatedAvailable} ready on the new revision${why}`;
}
