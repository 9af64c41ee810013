import type { AnyObject, EdgeConfig } from '../../shared/api/index.js';
import type { CacheCodec } from '../cache/desired-cache.js';
import { isSealed, open, seal, SecretOpenError } from './secret-box.js';

const valueContext = (config: string, key: string) => `EdgeConfig/${config}/secretData/${key}`;

/**
 * Encryption at rest of EdgeConfig secrets in the agent's cache: each secretData value is sealed
 * before the row reaches SQLite and opened when read. The row's digest (a hash of the whole
 * object, secrets included) is sealed too, so that a short secret cannot be guessed from it.
 * Everything else of the object stays readable.
 */
export class SecretCodec implements CacheCodec {
  constructor(private readonly key: Buffer) {}

  seal(obj: AnyObject): AnyObject {
    if (obj.kind === 'UnitPeers') return this.peerCredentials(obj, (v, field) => seal(this.key, v, peersContext(obj.metadata.name, field)));
    const secret = asConfig(obj)?.spec.secretData;
    if (!secret) return obj;
    const name = obj.metadata.name;
    const sealed = Object.fromEntries(Object.entries(secret).map(([k, v]) => [k, seal(this.key, v, valueContext(name, k))]));
    return { ...obj, spec: { ...(obj.spec as object), secretData: sealed } } as AnyObject;
  }

  open(obj: AnyObject): AnyObject {
    if (obj.kind === 'UnitPeers') {
      return this.peerCredentials(obj, (v, field) => {
        if (!isSealed(v)) return v;
        try {
          return open(this.key, v, peersContext(obj.metadata.name, field));
        } catch (err) {
          if (err instanceof SecretOpenError) throw new Error(`cannot decrypt the unit peer ${field} of UnitPeers "${obj.metadata.name}" in the agent cache (${err.message}); it is fetched again from the hub on the next connection`);
          throw err;
        }
      });
    }
    const secret = asConfig(obj)?.spec.secretData;
    if (!secret) return obj;
    const name = obj.metadata.name;
    const opened = Object.fromEntries(Object.entries(secret).map(([k, v]) => {
      // A value stored before encryption reads as it is; its digest (below) makes the hub resend it.
      if (!isSealed(v)) return [k, v];
      try {
        return [k, open(this.key, v, valueContext(name, k))];
      } catch (err) {
        if (err instanceof SecretOpenError) throw new Error(`cannot decrypt secret "${k}" of EdgeConfig "${name}" in the agent cache (${err.message}); it is fetched again from the hub on the next connection`);
        throw err;
      }
    }));
    return { ...obj, spec: { ...(obj.spec as object), secretData: opened } } as AnyObject;
  }

  sealDigest(kind: string, name: string, digest: string): string {
    return kind === 'EdgeConfig' || kind === 'UnitPeers' ? seal(this.key, digest, `${kind}/${name}/digest`) : digest;
  }

  /** '' for a row this key cannot vouch for: the hub then sends the object again. */
  openDigest(kind: string, name: string, stored: string): string {
    if (kind !== 'EdgeConfig' && kind !== 'UnitPeers') return stored;
    if (!isSealed(stored)) return '';
    try {
      return open(this.key, stored, `${kind}/${name}/digest`);
    } catch (err) {
      if (err instanceof SecretOpenError) return '';
      throw err;
    }
  }

  private peerCredentials(obj: AnyObject, map: (value: string, field: 'credential' | 'previousCredential') => string): AnyObject {
    const spec = obj.spec as { credential?: string; previousCredential?: string };
    return {
      ...obj,
      spec: {
        ...spec,
        ...(typeof spec.credential === 'string' ? { credential: map(spec.credential, 'credential') } : {}),
        ...(typeof spec.previousCredential === 'string' ? { previousCredential: map(spec.previousCredential, 'previousCredential') } : {}),
      },
    } as AnyObject;
  }
}

/** The unit peer credentials (issue 6) sealed like EdgeConfig secrets. */
const peersContext = (unit: string, field: string) => `UnitPeers/${unit}/${field}`;

function asConfig(obj: AnyObject): EdgeConfig | undefined {
  return obj.kind === 'EdgeConfig' ? (obj as unknown as EdgeConfig) : undefined;
}
