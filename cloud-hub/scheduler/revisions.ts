import { API_VERSION, type AppRevision, type EdgeApp } from '../../shared/api/index.js';
import { shortHash } from '../../shared/hash.js';

/** Label on every AppRevision naming its app (`outpost get revisions -l outpost.dev/app=web`). */
export const APP_LABEL = 'outpost.dev/app';
const DEFAULT_HISTORY_LIMIT = 10;

/** What a revision is: the template and the overrides (replicasPerUnit alone is a scale, not a rollout). */
export function revisionHash(app: EdgeApp): string {
  return shortHash({ template: app.spec.template, overrides: app.spec.overrides ?? [] });
}

export function revisionName(app: string, revision: number): string {
  return `${app}-${revision}`;
}

export interface RevisionPlan {
  /** The app's current revision number. */
  current: number;
  create: AppRevision[];
  /** Names of AppRevisions to delete (pruned, or renumbered). */
  delete: string[];
}

/**
 * The revisions of one app after this pass. A new template+overrides hash gets the next number.
 * Returning to a kept hash reuses that revision's content under a new, highest number (as kubectl
 * does), so the current revision is always the highest and `undo` goes to the one below it.
 * Keeps the current one, the `revisionHistoryLimit` newest others, and any still run by an instance.
 */
export function planRevisions(app: EdgeApp, existing: AppRevision[], inUse: ReadonlySet<number>): RevisionPlan {
  const hash = revisionHash(app);
  const max = existing.reduce((m, r) => Math.max(m, r.spec.revision), 0);
  const match = existing.find((r) => r.spec.hash === hash);
  const create: AppRevision[] = [];
  const del: string[] = [];
  let current = match?.spec.revision ?? 0;
  let kept = existing;
  if (!match || match.spec.revision !== max) {
    current = max + 1;
    create.push(newRevision(app, current, hash));
    if (match) {
      del.push(match.metadata.name);
      kept = existing.filter((r) => r !== match);
    }
  }
  const limit = app.spec.revisionHistoryLimit ?? DEFAULT_HISTORY_LIMIT;
  const old = kept.filter((r) => r.spec.revision !== current).sort((a, b) => b.spec.revision - a.spec.revision);
  old.slice(limit).forEach((r) => { if (!inUse.has(r.spec.revision)) del.push(r.metadata.name); });
  return { current, create, delete: del };
}

function newRevision(app: EdgeApp, revision: number, hash: string): AppRevision {
  return {
    apiVersion: API_VERSION,
    kind: 'AppRevision',
    metadata: { name: revisionName(app.metadata.name, revision), labels: { [APP_LABEL]: app.metadata.name } },
    spec: { app: app.metadata.name, revision, template: structuredClone(app.spec.template), ...(app.spec.overrides ? { overrides: structuredClone(app.spec.overrides) } : {}), hash },
  };
}
