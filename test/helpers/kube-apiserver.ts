// A real etcd + kube-apiserver for the opt-in Kubernetes tests. Not in any package registry, so
// tests using it skip unless OUTPOST_TEST_KUBE_BIN_DIR names a directory holding kube-apiserver
// (etcd from there or PATH, kubectl optional). Everything lives in a temp dir removed on stop().
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { accessSync, constants, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { parseAllDocuments } from 'yaml';
import { KINDS } from '../../shared/api/kinds.js';
import { freePort } from '../../shared/free-port.js';

export const KUBE_BIN_DIR_ENV = 'OUTPOST_TEST_KUBE_BIN_DIR';
const CRD_DIR = new URL('../../deploy/crds/', import.meta.url).pathname;
const READY_TIMEOUT_MS = 90_000;
const ESTABLISHED_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 5_000;

export interface KubeTestServer {
  /** https://127.0.0.1:PORT (self-signed certificate: the kubeconfig skips verification). */
  url: string;
  /** Bearer token of `admin`, a member of system:masters. */
  token: string;
  kubeconfigPath: string;
  /** Runs kubectl from the bin dir against this server; throws when there is no kubectl there. */
  kubectl(args: string[], stdin?: string): Promise<{ code: number; stdout: string; stderr: string }>;
  /** http://127.0.0.1:PORT of etcd (its v3 HTTP gateway serves /v3/kv/compaction). */
  etcdEndpoint: string;
  /** Process ids of etcd and kube-apiserver (e.g. to sample their RSS and CPU). */
  pids: { etcd: number; apiserver: number };
  /** One request to the API server as admin; resolves with the status and the parsed JSON body. */
  request(method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }>;
  stop(): Promise<void>;
}

export interface StartKubeApiServerOptions {
  /** Apply deploy/crds/*.yaml (or minimal CRDs for every kind when that dir is empty) and wait until Established. */
  installCrds?: boolean;
  /**
   * The API server's watch cache; default true (as in every real cluster). Without it, watches read
   * etcd directly, so a watch resuming from a compacted revision gets 410 Gone (with it, the cache
   * may still serve that revision).
   */
  watchCache?: boolean;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function findEtcd(binDir: string): string | undefined {
  const local = join(binDir, 'etcd');
  if (isExecutable(local)) return local;
  const r = spawnSync('sh', ['-c', 'command -v etcd'], { encoding: 'utf8' });
  const onPath = r.stdout.trim();
  return r.status === 0 && onPath ? onPath : undefined;
}

/** undefined when a real API server can be started here; otherwise why the test is skipped. */
export function kubeSkipReason(): string | undefined {
  const dir = process.env[KUBE_BIN_DIR_ENV];
  if (!dir) return `${KUBE_BIN_DIR_ENV} is not set: set it to a dir with kube-apiserver (and etcd, or etcd on PATH) to run the Kubernetes tests`;
  if (!isExecutable(join(dir, 'kube-apiserver'))) return `${KUBE_BIN_DIR_ENV}=${dir} has no executable kube-apiserver`;
  if (!findEtcd(dir)) return `no etcd in ${dir} or on PATH (apt-get install etcd-server)`;
  return undefined;
}

interface RawResponse { status: number; body: string }

/** One HTTPS request to the test API server as admin (self-signed certificate accepted). */
function apiRequest(url: string, token: string, method: string, path: string, body?: unknown): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(new URL(path, url), {
      method,
      rejectUnauthorized: false,
      timeout: 10_000,
      headers: { authorization: `Bearer ${token}`, accept: 'application/json', ...(payload ? { 'content-type': 'application/json' } : {}) },
    }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => { data += chunk; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: data }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer within 10 s`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/** The CRDs to install: deploy/crds/*.yaml when present, else minimal ones accepting any spec/status. */
export function crdManifests(): Record<string, unknown>[] {
  const files = existsSync(CRD_DIR) ? readdirSync(CRD_DIR).filter((f) => /\.ya?ml$/.test(f)).sort() : [];
  if (files.length > 0) {
    return files.flatMap((f) => parseAllDocuments(readFileSync(join(CRD_DIR, f), 'utf8'))
      .map((d) => d.toJS() as Record<string, unknown> | null)
      .filter((d): d is Record<string, unknown> => d !== null && d.kind === 'CustomResourceDefinition'));
  }
  const open = { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };
  return KINDS.map((k) => ({
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${k.plural}.outpost.dev` },
    spec: {
      group: 'outpost.dev',
      scope: 'Cluster',
      names: { kind: k.kind, plural: k.plural, singular: k.singular, shortNames: k.shortNames, categories: ['outpost'] },
      versions: [{
        name: 'v1alpha1', served: true, storage: true,
        subresources: { status: {} },
        schema: { openAPIV3Schema: { type: 'object', properties: { spec: open, status: open } } },
      }],
    },
  }));
}

async function installCrds(url: string, token: string): Promise<void> {
  const crds = crdManifests();
  for (const crd of crds) {
    const r = await apiRequest(url, token, 'POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd);
    if (r.status !== 201 && r.status !== 409) throw new Error(`creating CRD ${String((crd.metadata as { name?: string }).name)}: HTTP ${r.status} ${r.body.slice(0, 500)}`);
  }
  const deadline = Date.now() + ESTABLISHED_TIMEOUT_MS;
  for (const crd of crds) {
    const name = String((crd.metadata as { name?: string }).name);
    const plural = (crd.spec as { names: { plural: string } }).names.plural;
    for (;;) {
      const r = await apiRequest(url, token, 'GET', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`);
      const conditions = r.status === 200 ? ((JSON.parse(r.body) as { status?: { conditions?: { type: string; status: string }[] } }).status?.conditions ?? []) : [];
      const established = conditions.some((c) => c.type === 'Established' && c.status === 'True');
      // Established can come a moment before the endpoint serves: wait for a list to answer too.
      if (established && (await apiRequest(url, token, 'GET', `/apis/outpost.dev/v1alpha1/${plural}?limit=1`)).status === 200) break;
      if (Date.now() > deadline) throw new Error(`CRD ${name} not Established within ${ESTABLISHED_TIMEOUT_MS} ms`);
      await delay(100);
    }
  }
}

function startProcess(bin: string, args: string[], logPath: string): { child: ChildProcess; output: () => string } {
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let tail = '';
  const keep = (d: Buffer) => { tail = (tail + d.toString()).slice(-8192); };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  child.once('exit', (code, signal) => { tail += `\n(exited ${code ?? signal})`; writeFileSync(logPath, tail); });
  return { child, output: () => tail };
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const graceful = await Promise.race([exited.then(() => true), delay(STOP_GRACE_MS).then(() => false)]);
  if (!graceful) {
    child.kill('SIGKILL');
    await Promise.race([exited, delay(STOP_GRACE_MS)]);
  }
}

/** Starts etcd and kube-apiserver on free loopback ports in a new temp dir; resolves when /readyz answers 200. */
export async function startKubeApiServer(options: StartKubeApiServerOptions = {}): Promise<KubeTestServer> {
  const skip = kubeSkipReason();
  if (skip) throw new Error(skip);
  const binDir = process.env[KUBE_BIN_DIR_ENV]!;
  const dir = mkdtempSync(join(tmpdir(), 'outpost-kube-'));
  const token = randomBytes(24).toString('hex');
  writeFileSync(join(dir, 'tokens.csv'), `${token},admin,admin-uid,"system:masters"\n`, { mode: 0o600 });
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  writeFileSync(join(dir, 'sa.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  writeFileSync(join(dir, 'sa.pub'), publicKey.export({ type: 'spki', format: 'pem' }));

  const [etcdPort, etcdPeerPort, apiPort] = [await freePort(), await freePort(), await freePort()];
  const etcdEndpoint = `http://127.0.0.1:${etcdPort}`;
  const url = `https://127.0.0.1:${apiPort}`;
  const processes: ChildProcess[] = [];
  const killAll = () => {
    for (const p of processes) p.kill('SIGKILL');
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch { /* a file still being written by a dying process: the temp dir is left behind */ }
  };
  // A test process that dies without stop() must not leave etcd and the API server running: on
  // exit, and on SIGTERM/SIGINT (a runner's timeout), which then go on to end the process as before.
  const onSignal = (signal: NodeJS.Signals) => {
    killAll();
    process.kill(process.pid, signal);
  };
  process.once('exit', killAll);
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    for (const p of [...processes].reverse()) await stopProcess(p);
    process.removeListener('exit', killAll);
    process.removeListener('SIGTERM', onSignal);
    process.removeListener('SIGINT', onSignal);
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    const etcd = startProcess(findEtcd(binDir)!, [
      '--name', 'default', '--data-dir', join(dir, 'etcd-data'),
      '--listen-client-urls', etcdEndpoint, '--advertise-client-urls', etcdEndpoint,
      '--listen-peer-urls', `http://127.0.0.1:${etcdPeerPort}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${etcdPeerPort}`,
      '--initial-cluster', `default=http://127.0.0.1:${etcdPeerPort}`, '--listen-metrics-urls', '',
    ], join(dir, 'etcd.log'));
    processes.push(etcd.child);
    const api = startProcess(join(binDir, 'kube-apiserver'), [
      '--etcd-servers', etcdEndpoint, '--bind-address', '127.0.0.1', '--advertise-address', '127.0.0.1',
      '--secure-port', String(apiPort), '--cert-dir', join(dir, 'certs'), '--token-auth-file', join(dir, 'tokens.csv'),
      '--authorization-mode', 'RBAC',
      '--service-account-issuer', 'https://kubernetes.default.svc.cluster.local',
      '--service-account-key-file', join(dir, 'sa.pub'), '--service-account-signing-key-file', join(dir, 'sa.key'),
      '--service-cluster-ip-range', '10.0.0.0/24', '--disable-admission-plugins', 'ServiceAccount',
      '--endpoint-reconciler-type', 'none', '--profiling=false', '--v=1',
      ...(options.watchCache === false ? ['--watch-cache=false'] : []),
    ], join(dir, 'kube-apiserver.log'));
    processes.push(api.child);

    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      const r = await apiRequest(url, token, 'GET', '/readyz').catch(() => undefined);
      if (r?.status === 200) break;
      for (const [name, p] of [['etcd', etcd], ['kube-apiserver', api]] as const) {
        if (p.child.exitCode !== null || p.child.signalCode !== null) throw new Error(`${name} exited before the API server was ready:\n${p.output()}`);
      }
      if (Date.now() > deadline) throw new Error(`kube-apiserver not ready within ${READY_TIMEOUT_MS} ms:\n${api.output()}`);
      await delay(250);
    }

    const kubeconfigPath = join(dir, 'kubeconfig');
    writeFileSync(kubeconfigPath, [
      'apiVersion: v1', 'kind: Config',
      'clusters:', '- name: test', '  cluster:', `    server: ${url}`, '    insecure-skip-tls-verify: true',
      'users:', '- name: admin', '  user:', `    token: ${token}`,
      'contexts:', '- name: test', '  context:', '    cluster: test', '    user: admin', '    namespace: default',
      'current-context: test', '',
    ].join('\n'), { mode: 0o600 });

    if (options.installCrds) await installCrds(url, token);

    const kubectl = (args: string[], stdin?: string) => {
      const bin = join(binDir, 'kubectl');
      if (!isExecutable(bin)) return Promise.reject(new Error(`no executable kubectl in ${binDir} (${KUBE_BIN_DIR_ENV})`));
      return new Promise<{ code: number; stdout: string; stderr: string }>((resolve, reject) => {
        const child = spawn(bin, ['--kubeconfig', kubeconfigPath, ...args], { stdio: ['pipe', 'pipe', 'pipe'], timeout: 60_000 });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
        child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
        child.once('error', reject);
        child.once('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr }));
        child.stdin.end(stdin ?? '');
      });
    };
    const requestJson = async (method: string, path: string, body?: unknown) => {
      const r = await apiRequest(url, token, method, path, body);
      let parsed: unknown = r.body;
      try {
        parsed = JSON.parse(r.body);
      } catch { /* not JSON: keep the text */ }
      return { status: r.status, body: parsed };
    };
    return { url, token, kubeconfigPath, kubectl, etcdEndpoint, pids: { etcd: etcd.child.pid ?? 0, apiserver: api.child.pid ?? 0 }, request: requestJson, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
