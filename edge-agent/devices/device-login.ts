import type { DeviceDirectory } from './device-directory.js';
import { clientIdAllowed, clientIdOwner } from './access.js';
import { LoginLimiter, type LoginLimit } from './login-limiter.js';

/** A TLS client certificate as the broker saw it. */
export interface PeerCertificate {
  /** It verified against the CA given with --mqtt-tls-ca. */
  verified: boolean;
  /** Subject CN and DNS subject alternative names. */
  names: string[];
  /** Why it did not verify. */
  error?: string;
}

export interface LoginRequest {
  clientId: string;
  username?: string | undefined;
  password?: Buffer | undefined;
  /** The client's IP address (rate limit key). */
  address?: string | undefined;
  certificate?: PeerCertificate | undefined;
}

export type LoginRefusal = 'bad-credentials' | 'bad-certificate' | 'anonymous' | 'not-bound' | 'client-id' | 'rate-limited';
export type LoginResult = { ok: true; device: string; via: 'password' | 'certificate' | 'anonymous' } | { ok: false; reason: LoginRefusal; message: string };

export interface DeviceLoginOptions {
  /** Development only: a client without username is the device named by its client id. */
  allowAnonymous?: boolean;
  /** Failed logins per client address. */
  perAddress: LoginLimit;
  /** Failed logins per username (for certificate logins: per certificate name). */
  perUsername: LoginLimit;
  now?: () => number;
}

/** Refusals that are guesses at a secret: they spend the rate limit. */
const GUESSES = new Set<LoginRefusal>(['bad-credentials', 'bad-certificate', 'anonymous']);

/**
 * Who a connecting client is: a device by password (its DeviceCredential), by a verified client
 * certificate naming it (CN or DNS SAN), or (development) anonymously by client id; then that the
 * device is at home here and the client id is the device's. Failed guesses are rate limited per
 * address and per username.
 */
export class DeviceLogin {
  private readonly byAddress: LoginLimiter;
  private readonly byUsername: LoginLimiter;

  constructor(private readonly directory: DeviceDirectory, private readonly options: DeviceLoginOptions) {
    const now = options.now ?? Date.now;
    this.byAddress = new LoginLimiter({ limit: options.perAddress, now });
    this.byUsername = new LoginLimiter({ limit: options.perUsername, now });
  }

  async login(req: LoginRequest): Promise<LoginResult> {
    const addressKey = req.address ?? '';
    const userKey = req.username ?? req.certificate?.names[0] ?? `client:${req.clientId}`;
    const refused: LoginResult = { ok: false, reason: 'rate-limited', message: 'too many failed logins from this address or for this user: try again later' };
    if (this.byAddress.limited(addressKey)) return refused;
    // Per username, checks under way count against the failures left, so a burst of guesses for
    // one username is not all checked before the first is charged. Per address they do not: many
    // devices behind one address logging in at once (after an agent restart) must all get through.
    if (!this.byUsername.begin(userKey)) return refused;
    let result: LoginResult;
    try {
      result = await this.identify(req);
    } finally {
      this.byUsername.end(userKey);
    }
    // Charged once the result is known, not before.
    if (!result.ok && GUESSES.has(result.reason)) {
      this.byAddress.failed(addressKey);
      this.byUsername.failed(userKey);
    }
    if (result.ok && !clientIdAllowed(result.device, req.clientId)) {
      return { ok: false, reason: 'client-id', message: `client id must be "${result.device}" or start with "${result.device}-"` };
    }
    const owner = result.ok ? clientIdOwner(req.clientId, (name) => this.directory.device(name) !== undefined) : undefined;
    if (result.ok && owner !== result.device) {
      return { ok: false, reason: 'client-id', message: `client id "${req.clientId.slice(0, 128)}" belongs to device "${owner}"` };
    }
    return result;
  }

  private async identify(req: LoginRequest): Promise<LoginResult> {
    const { username, password, certificate } = req;
    const hasPassword = password !== undefined && password.length > 0;
    if (certificate && !hasPassword) return this.byCertificate(certificate, username);
    if (username === undefined || username === '') {
      if (this.options.allowAnonymous && this.directory.device(req.clientId) !== undefined) return { ok: true, device: req.clientId, via: 'anonymous' };
      return { ok: false, reason: 'anonymous', message: 'anonymous MQTT clients are not allowed: log in with a username and password or a client certificate' };
    }
    const res = await this.directory.authenticate(username, password?.toString('utf8') ?? '');
    if (res.ok) return { ok: true, device: res.device, via: 'password' };
    return res.reason === 'bad-credentials'
      ? { ok: false, reason: 'bad-credentials', message: 'bad user name or password' }
      : { ok: false, reason: 'not-bound', message: 'the device is not bound to this node or its unit' };
  }

  private byCertificate(cert: PeerCertificate, username: string | undefined): LoginResult {
    if (!cert.verified) return { ok: false, reason: 'bad-certificate', message: `client certificate not accepted: ${cert.error ?? 'it does not verify against the CA'}` };
    // A username, when given, picks which of the certificate's names to log in as.
    const candidates = username ? cert.names.filter((n) => n === username) : cert.names;
    if (candidates.length === 0) return { ok: false, reason: 'bad-certificate', message: `the client certificate does not name "${username}"` };
    const device = candidates.find((n) => this.directory.device(n) !== undefined);
    if (device === undefined) return { ok: false, reason: 'not-bound', message: `no device named by the certificate (${candidates.slice(0, 4).join(', ')}) is bound to this node or its unit` };
    return { ok: true, device, via: 'certificate' };
  }
}
