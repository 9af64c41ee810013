import { Type, type Static } from '@sinclair/typebox';
import { described, LabelsSchema, NameSchema } from './meta.js';

// What one instance runs: the app template (issue 4). An instance runs either processes (the
// agent's process runtime) or containers (the Docker Engine API: Docker or Podman); the template
// says which. Both lists hold one entry for now (one supervised unit per instance).

export const RestartPolicySchema = Type.Union([Type.Literal('Always'), Type.Literal('OnFailure'), Type.Literal('Never')]);
export type RestartPolicy = Static<typeof RestartPolicySchema>;

const EnvSchema = Type.Record(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$', maxLength: 256 }), Type.String({ maxLength: 65536 }), { additionalProperties: false });

/** CPU: cores ("0.5", "2") or millicores ("250m"). Memory: bytes or with a binary/decimal suffix ("64Mi", "1G"). */
export const CpuQuantitySchema = Type.String({ pattern: '^([0-9]+m|[0-9]+(\\.[0-9]{1,3})?)$', maxLength: 16, description: 'CPU cores, e.g. 0.5, 2 or 250m' });
export const MemoryQuantitySchema = Type.String({ pattern: '^[0-9]+(Ki|Mi|Gi|Ti|k|M|G|T)?$', maxLength: 24, description: 'bytes, e.g. 67108864, 64Mi, 1Gi' });
const ResourceListSchema = Type.Object({ cpu: Type.Optional(CpuQuantitySchema), memory: Type.Optional(MemoryQuantitySchema) }, { additionalProperties: false });
export const ResourcesSchema = Type.Object({ requests: Type.Optional(ResourceListSchema), limits: Type.Optional(ResourceListSchema) }, { additionalProperties: false, description: 'requests: what the scheduler reserves on a node; limits: what the runtime enforces (containers).' });
export type Resources = Static<typeof ResourcesSchema>;

const PortNumber = Type.Integer({ minimum: 1, maximum: 65535 });

export const ProbeSchema = Type.Object(
  {
    httpGet: Type.Optional(Type.Object({ path: Type.Optional(Type.String({ pattern: '^/', maxLength: 2048 })), port: PortNumber, host: Type.Optional(Type.String({ maxLength: 253 })) }, { additionalProperties: false })),
    tcpSocket: Type.Optional(Type.Object({ port: PortNumber, host: Type.Optional(Type.String({ maxLength: 253 })) }, { additionalProperties: false })),
    exec: Type.Optional(Type.Object({ command: Type.Array(Type.String({ maxLength: 4096 }), { minItems: 1, maxItems: 64 }) }, { additionalProperties: false })),
    initialDelaySeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 3600, description: 'Seconds after the start before the first probe. Default 0.' })),
    periodSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 3600, description: 'Default 10.' })),
    timeoutSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 600, description: 'Default 1.' })),
    failureThreshold: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, description: 'Consecutive failures that make the probe fail. Default 3.' })),
    successThreshold: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, description: 'Consecutive successes that make it pass again. Default 1.' })),
  },
  { additionalProperties: false, description: 'Exactly one of httpGet, tcpSocket, exec (checked when applied).' },
);
export type Probe = Static<typeof ProbeSchema>;

export const ConfigMountSchema = Type.Object(
  {
    config: NameSchema,
    path: Type.Optional(Type.String({ pattern: '^/', maxLength: 4096, description: 'Absolute path in the container; for a process, the directory is also given as env OUTPOST_CONFIG_DIR_<NAME>. Default /etc/outpost/<config>.' })),
  },
  { additionalProperties: false, description: 'Data of an EdgeConfig as files in a directory (processes: a directory; containers: a mount).' },
);
export type ConfigMount = Static<typeof ConfigMountSchema>;

export const EnvFromSchema = Type.Object(
  { config: NameSchema, prefix: Type.Optional(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$', maxLength: 64 })) },
  { additionalProperties: false, description: 'Every key of an EdgeConfig as an environment variable (`prefix` + key).' },
);
export type EnvFrom = Static<typeof EnvFromSchema>;

const commonFields = {
  name: Type.Optional(described(NameSchema, 'Unique within the template. Default "main".')),
  args: Type.Optional(Type.Array(Type.String({ maxLength: 65536 }), { maxItems: 1024 })),
  env: Type.Optional(EnvSchema),
  envFrom: Type.Optional(Type.Array(EnvFromSchema, { maxItems: 32 })),
  configMounts: Type.Optional(Type.Array(ConfigMountSchema, { maxItems: 32 })),
  workingDir: Type.Optional(Type.String({ maxLength: 4096 })),
  resources: Type.Optional(ResourcesSchema),
  readinessProbe: Type.Optional(ProbeSchema),
  livenessProbe: Type.Optional(ProbeSchema),
};

export const ProcessSpecSchema = Type.Object({ command: Type.String({ minLength: 1, maxLength: 4096 }), ...commonFields }, { additionalProperties: false, description: 'A process started by the agent\'s process runtime.' });
export type ProcessSpec = Static<typeof ProcessSpecSchema>;

export const ContainerPortSchema = Type.Object(
  {
    containerPort: PortNumber,
    hostPort: Type.Optional(described(PortNumber, 'Published on the node (ignored with hostNetwork).')),
    hostIP: Type.Optional(Type.String({ maxLength: 64, description: 'Default 0.0.0.0.' })),
    protocol: Type.Optional(Type.Union([Type.Literal('TCP'), Type.Literal('UDP')])),
  },
  { additionalProperties: false },
);

export const DeviceMappingSchema = Type.Object(
  {
    hostPath: Type.String({ pattern: '^/dev/', maxLength: 4096 }),
    containerPath: Type.Optional(Type.String({ pattern: '^/', maxLength: 4096, description: 'Default: hostPath.' })),
    permissions: Type.Optional(Type.String({ pattern: '^[rwm]{1,3}$', description: 'Default rwm.' })),
  },
  { additionalProperties: false, description: 'A host device given to a container, e.g. /dev/video0 for a camera.' },
);

export const ContainerSpecSchema = Type.Object(
  {
    image: Type.String({ minLength: 1, maxLength: 1024 }),
    imagePullPolicy: Type.Optional(Type.Union([Type.Literal('IfNotPresent'), Type.Literal('Always'), Type.Literal('Never')], { description: 'IfNotPresent (default): a cached image starts offline. Always: pull, and fall back to the cached image when the registry is unreachable. Never: cached only.' })),
    command: Type.Optional(Type.Array(Type.String({ maxLength: 4096 }), { minItems: 1, maxItems: 64, description: 'Overrides the image\'s entrypoint.' })),
    ports: Type.Optional(Type.Array(ContainerPortSchema, { maxItems: 64 })),
    devices: Type.Optional(Type.Array(DeviceMappingSchema, { maxItems: 32 })),
    stopSignal: Type.Optional(Type.String({ pattern: '^SIG[A-Z0-9]+$', maxLength: 16, description: 'Signal that stops the container (default SIGTERM).' })),
    ...commonFields,
  },
  { additionalProperties: false, description: 'A container run through the Docker Engine API (Docker or Podman).' },
);
export type ContainerSpec = Static<typeof ContainerSpecSchema>;

export const TolerationSchema = Type.Object(
  {
    key: Type.Optional(Type.String({ maxLength: 317 })),
    operator: Type.Optional(Type.Union([Type.Literal('Equal'), Type.Literal('Exists')], { description: 'Equal (default) or Exists (any value; with no key, tolerates every taint).' })),
    value: Type.Optional(Type.String({ maxLength: 63 })),
    effect: Type.Optional(Type.Union([Type.Literal('NoSchedule'), Type.Literal('PreferNoSchedule')], { description: 'Empty: every effect.' })),
  },
  { additionalProperties: false },
);
export type Toleration = Static<typeof TolerationSchema>;

export const TaintSchema = Type.Object(
  {
    key: Type.String({ minLength: 1, maxLength: 317 }),
    value: Type.Optional(Type.String({ maxLength: 63 })),
    effect: Type.Union([Type.Literal('NoSchedule'), Type.Literal('PreferNoSchedule')], { description: 'NoSchedule: no new instance without a toleration. PreferNoSchedule: only when no other node fits.' }),
  },
  { additionalProperties: false },
);
export type Taint = Static<typeof TaintSchema>;

export const AppServiceSchema = Type.Object(
  {
    name: Type.String({ pattern: '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$', maxLength: 63, description: 'A DNS label: the instances answer at <name>.outpost and <name>.<unit>.outpost.' }),
    port: PortNumber,
    protocol: Type.Optional(Type.Union([Type.Literal('tcp'), Type.Literal('udp'), Type.Literal('http'), Type.Literal('https'), Type.Literal('grpc')], { description: 'Default tcp.' })),
    metadata: Type.Optional(Type.Record(Type.String({ pattern: '^[A-Za-z0-9._/-]{1,63}$' }), Type.String({ maxLength: 512 }), { additionalProperties: false, maxProperties: 32 })),
    weight: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, description: '1..1000, default 100.' })),
  },
  { additionalProperties: false, description: 'EdgeApp `spec.service`: every instance of the app is registered in its node\'s local service registry under this name (README "Local service registry"), health following its readiness.' },
);
export type AppService = Static<typeof AppServiceSchema>;

export const AppTemplateSchema = Type.Object(
  {
    service: Type.Optional(described(AppServiceSchema, 'Copied by the hub from EdgeApp spec.service (so overrides can patch /service); the agent registers each instance under it.')),
    processes: Type.Optional(Type.Array(ProcessSpecSchema, { minItems: 1, maxItems: 1, description: 'One process (exactly one of processes and containers).' })),
    containers: Type.Optional(Type.Array(ContainerSpecSchema, { minItems: 1, maxItems: 1, description: 'One container (exactly one of processes and containers).' })),
    restartPolicy: Type.Optional(described(RestartPolicySchema, 'Default Always.')),
    terminationGracePeriodSeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 3600, description: 'Seconds between the stop signal and SIGKILL. Default 10.' })),
    hostNetwork: Type.Optional(Type.Boolean({ description: 'Containers share the node\'s network (no port mapping).' })),
    nodeSelector: Type.Optional(described(LabelsSchema, 'Only nodes (of the unit) with these labels.')),
    tolerations: Type.Optional(Type.Array(TolerationSchema, { maxItems: 32, description: 'Node taints the instances tolerate.' })),
  },
  { additionalProperties: false },
);
export type AppTemplate = Static<typeof AppTemplateSchema>;

/** The one process or container of a template, and which runtime runs it. */
export function workloadOf(t: AppTemplate): { runtime: 'process'; spec: ProcessSpec } | { runtime: 'container'; spec: ContainerSpec } {
  const c = t.containers?.[0];
  if (c) return { runtime: 'container', spec: c };
  const p = t.processes?.[0];
  if (p) return { runtime: 'process', spec: p };
  throw new Error('template has neither processes nor containers');
}

/** The EdgeConfig names a template uses (envFrom and configMounts of its processes or containers). */
export function configNamesOf(template: AppTemplate): string[] {
  const names = new Set<string>();
  for (const w of [...(template.processes ?? []), ...(template.containers ?? [])]) {
    for (const e of w.envFrom ?? []) names.add(e.config);
    for (const m of w.configMounts ?? []) names.add(m.config);
  }
  return [...names].sort();
}
