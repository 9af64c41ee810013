import type { AnyObject, AppRevision, Device, DeviceModel, EdgeApp, EdgeConfig, EdgeNode, Instance, NodeUnit } from '../shared/api/index.js';

/** `3m`, `2h`, `5d` since an ISO time; `-` when unknown. */
export function age(iso: string | undefined, now = Date.now()): string {
  if (!iso) return '-';
  const s = Math.max(0, Math.floor((now - Date.parse(iso)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('   ').trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

type Columns = { headers: string[]; row(o: AnyObject): string[] };

const unitCols = (wide: boolean): Columns => ({
  headers: ['NAME', 'NODES', 'READY', 'DISCONNECTED', 'DOWN', 'STATUS', 'AGE', ...(wide ? ['MEMBERS', 'TAINTS', 'DESCRIPTION'] : [])],
  row: (o) => {
    const u = o as NodeUnit;
    const n = u.status?.nodes;
    const flags = (u.status?.conditions ?? []).filter((c) => c.type !== 'Ready' && c.status === 'True').map((c) => c.type);
    const state = [u.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True' ? 'Ready' : 'NotReady', ...flags].join(',');
    const members = [
      ...(u.spec?.nodes?.length ? [`nodes=${u.spec.nodes.join('+')}`] : []),
      ...(u.spec?.selector?.matchLabels ? [Object.entries(u.spec.selector.matchLabels).map(([k, v]) => `${k}=${v}`).join(',')] : []),
    ].join(' ') || 'join';
    const taints = (u.spec?.taints ?? []).map((t) => `${t.key}${t.value ? `=${t.value}` : ''}:${t.effect}`).join(',') || '-';
    return [
      u.metadata.name, String(n?.total ?? 0), String(n?.ready ?? 0), String(n?.disconnected ?? 0), String(n?.down ?? 0), state, age(u.metadata.creationTimestamp),
      ...(wide ? [members, taints, u.spec?.description ?? ''] : []),
    ];
  },
});

const nodeCols = (wide: boolean): Columns => ({
  headers: ['NAME', 'UNIT', 'PHASE', 'SINCE', 'VERSION', ...(wide ? ['LAST-SEEN', 'REVISION', 'OUTBOX', 'HOSTNAME'] : [])],
  row: (o) => {
    const n = o as EdgeNode;
    const s = n.status;
    return [
      n.metadata.name, n.spec.unit, s?.phase ?? 'Pending', age(s?.since), s?.agentVersion ?? '-',
      ...(wide ? [age(s?.lastSeen), String(s?.appliedRevision ?? '-'), String(s?.outboxDepth ?? '-'), s?.hostname ?? '-'] : []),
    ];
  },
});

const appCols = (wide: boolean): Columns => ({
  headers: ['NAME', 'READY', 'UNITS', 'AGE', ...(wide ? ['REVISION', 'TEMPLATE', 'GENERATION', 'OBSERVED'] : [])],
  row: (o) => {
    const a = o as EdgeApp;
    const units = a.status?.units ?? [];
    const ready = units.reduce((n, u) => n + u.ready, 0);
    const desired = units.reduce((n, u) => n + u.desired, 0);
    // A unit in a rollout also shows its phase and how many instances run the new revision.
    const perUnit = units.map((u) => `${u.unit} ${u.ready}/${u.desired}${u.rollout && u.rollout !== 'Complete' ? ` (${u.rollout} ${u.updated}/${u.desired})` : ''}`).join(', ') || '-';
    return [
      a.metadata.name, `${ready}/${desired}`, perUnit, age(a.metadata.creationTimestamp),
      ...(wide ? [String(a.status?.revision ?? '-'), a.status?.templateHash ?? '-', String(a.metadata.generation ?? '-'), String(a.status?.observedGeneration ?? '-')] : []),
    ];
  },
});

const instanceCols = (wide: boolean): Columns => ({
  headers: ['NAME', 'APP', 'UNIT', 'NODE', 'PHASE', 'READY', 'RESTARTS', 'PID', ...(wide ? ['TEMPLATE', 'RUNNING', 'MESSAGE'] : [])],
  row: (o) => {
    const i = o as Instance;
    const s = i.status;
    return [
      i.metadata.name, i.spec.app, i.spec.unit, i.spec.node || '<none>', s?.phase ?? 'Pending', s?.ready ? 'yes' : 'no', String(s?.restarts ?? 0), String(s?.pid ?? '-'),
      ...(wide ? [i.spec.templateHash, s?.templateHash ?? '-', s?.message ?? ''] : []),
    ];
  },
});

const configCols = (): Columns => ({
  headers: ['NAME', 'DATA', 'SECRETS', 'AGE'],
  row: (o) => {
    const c = o as EdgeConfig;
    return [c.metadata.name, String(Object.keys(c.spec.data ?? {}).length), String(Object.keys(c.spec.secretData ?? {}).length), age(c.metadata.creationTimestamp)];
  },
});

const revisionCols = (): Columns => ({
  headers: ['NAME', 'APP', 'REVISION', 'HASH', 'AGE'],
  row: (o) => {
    const r = o as AppRevision;
    return [r.metadata.name, r.spec.app, String(r.spec.revision), r.spec.hash, age(r.metadata.creationTimestamp)];
  },
});

const deviceCols = (wide: boolean): Columns => ({
  headers: ['NAME', 'MODEL', 'HOME', 'ONLINE', 'LAST-SEEN', 'DESIRED/OBSERVED', ...(wide ? ['REPORTED-BY', 'REPORTED', 'MESSAGE'] : [])],
  row: (o) => {
    const d = o as Device;
    const s = d.status;
    const home = d.spec.node !== undefined ? `node/${d.spec.node}` : `unit/${d.spec.unit ?? '?'}`;
    const online = s?.online === undefined ? '-' : s.online ? 'yes' : 'no';
    return [
      d.metadata.name, d.spec.model, home, online, age(s?.lastSeen), `${d.metadata.generation ?? '-'}/${s?.observedDesired ?? '-'}`,
      ...(wide ? [s?.node ?? '-', String(Object.keys(s?.reported ?? {}).length), s?.message ?? ''] : []),
    ];
  },
});

const deviceModelCols = (): Columns => ({
  headers: ['NAME', 'PROPERTIES', 'READWRITE', 'AGE'],
  row: (o) => {
    const m = o as DeviceModel;
    return [m.metadata.name, String(m.spec.properties.length), m.spec.properties.filter((p) => p.access === 'ReadWrite').map((p) => p.name).join(',') || '-', age(m.metadata.creationTimestamp)];
  },
});

const unitPeersCols = (wide: boolean): Columns => ({
  headers: ['NAME', 'PEERS', 'NODES', ...(wide ? ['ENDPOINTS', 'ROTATING'] : []), 'AGE'],
  row: (o) => {
    const p = (o.spec ?? {}) as { peers?: { node: string; endpoint: string }[]; previousCredential?: string };
    const peers = p.peers ?? [];
    return [
      o.metadata.name, String(peers.length), peers.map((x) => x.node).join(',') || '-',
      ...(wide ? [peers.map((x) => x.endpoint).join(',') || '-', p.previousCredential !== undefined ? 'yes' : 'no'] : []),
      age(o.metadata.creationTimestamp),
    ];
  },
});

export function columnsFor(kind: string, wide: boolean): Columns {
  switch (kind) {
    case 'NodeUnit': return unitCols(wide);
    case 'EdgeNode': return nodeCols(wide);
    case 'EdgeApp': return appCols(wide);
    case 'Instance': return instanceCols(wide);
    case 'EdgeConfig': return configCols();
    case 'AppRevision': return revisionCols();
    case 'Device': return deviceCols(wide);
    case 'DeviceModel': return deviceModelCols();
    case 'UnitPeers': return unitPeersCols(wide);
    default: return { headers: ['NAME'], row: (o) => [o.metadata.name] };
  }
}

export function objectTable(kind: string, items: AnyObject[], wide: boolean): string {
  const cols = columnsFor(kind, wide);
  return table(cols.headers, items.map((o) => cols.row(o)));
}
