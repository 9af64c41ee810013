import { REDACTED, type AnyObject, type EdgeConfig } from '../../shared/api/index.js';
import { OutpostError } from '../../shared/errors.js';

/** The object as the API shows it without `showSecrets`: every secretData value is REDACTED. */
export function redactSecrets<T extends AnyObject>(obj: T): T {
  if (obj.kind === 'UnitPeers') {
    // The unit peer credentials (hub-written, never applied by operators).
    const spec = obj.spec as { credential?: string; previousCredential?: string };
    return { ...obj, spec: { ...spec, credential: REDACTED, ...(spec.previousCredential !== undefined ? { previousCredential: REDACTED } : {}) } };
  }
  if (obj.kind !== 'EdgeConfig') return obj;
  const cfg = obj as unknown as EdgeConfig;
  const secret = cfg.spec?.secretData;
  if (!secret) return obj;
  const redacted = Object.fromEntries(Object.keys(secret).map((k) => [k, REDACTED]));
  return { ...obj, spec: { ...cfg.spec, secretData: redacted } };
}

/**
 * An applied EdgeConfig may carry REDACTED values (it was read back with `get -o yaml`): each one
 * keeps the stored value of that key. A REDACTED value with no stored value to keep is refused,
 * so the literal placeholder is never stored as a secret.
 */
export function restoreRedactedSecrets<T extends AnyObject>(incoming: T, existing: AnyObject | undefined): T {
  if (incoming.kind !== 'EdgeConfig') return incoming;
  const cfg = incoming as unknown as EdgeConfig;
  const secret = cfg.spec?.secretData;
  if (!secret || !Object.values(secret).includes(REDACTED)) return incoming;
  const stored = (existing as EdgeConfig | undefined)?.spec?.secretData ?? {};
  const missing = Object.keys(secret).filter((k) => secret[k] === REDACTED && stored[k] === undefined);
  if (missing.length > 0) {
    throw new OutpostError('INVALID', `EdgeConfig "${cfg.metadata.name}": secretData ${missing.map((k) => `"${k}"`).join(', ')} ${missing.length === 1 ? 'is' : 'are'} "${REDACTED}" but no stored value exists to keep; give the real value`, {
      fields: missing.map((k) => ({ path: `/spec/secretData/${k}`, message: `"${REDACTED}" keeps a stored value, and there is none for this key` })),
    });
  }
  const restored = Object.fromEntries(Object.entries(secret).map(([k, v]) => [k, v === REDACTED ? (stored[k] ?? v) : v]));
  return { ...incoming, spec: { ...cfg.spec, secretData: restored } };
}
