import { Type, type Static } from '@sinclair/typebox';
import { LabelsSchema, NameSchema } from './meta.js';

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
/** requests: what the scheduler reserves on a node; limits: what the runtime enforces (containers). */
export const ResourcesSchema = Type.Object({ requests: Type.Optional(ResourceListSchema), limits: Type.Optional(ResourceListSchema) }, { additionalProperties: false });
export type Resources = Static<typeof ResourcesSchema>;

const PortNumber = Type.Integer({ minimum: 1, maximum: 65535 });

/** Exactly one of httpGet, tcpSocket, exec (checked at apply time: see semanticProblems). */
export const ProbeSchema = Type.Object(
  {
    httpGet: Type.Optional(Type.Object({ path: Type.Optional(Type.String({ pattern: '^/', maxLength: 2048 })), port: PortNumber, host: Type.Optional(Type.String({ maxLength: 253 })) }, { additionalProperties: false })),
    tcpSocket: Type.Optional(Type.Object({ port: PortNumber, host: Type.Optional(Type.String({ maxLength: 253 })) }, { additionalProperties: false })),
    exec: Type.Optional(Type.Object({ command: Type.Array(Type.String({ maxLength: 4096 }), { minItems: 1, maxItems: 64 }) }, { additionalProperties: false })),
    /** Seconds after the start before the first probe. Default 0. */
    initialDelaySeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 3600 })),
    /** Default 10. */
    periodSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 3600 })),
    /** Default 1. */
    timeoutSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 600 })),
    /** Consecutive failures that make the probe fail. Default 3. */
    failureThreshold: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
    /** Consecutive successes that make it pass again. Default 1. */
    successThreshold: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
  },
  { additionalProperties: false },
);
export type Probe = Static<typeof ProbeSchema>;

/** Data of an EdgeConfig as files in a directory (processes: a directory; containers: a mount). */
export const ConfigMountSchema = Type.Object(
  {
    config: NameSchema,
    /** Absolute path in the container; for a process, the directory is also given as env OUTPOST_CONFIG_DIR_<NAME>. Default /etc/outpost/<config>. */
    path: Type.Optional(Type.String({ pattern: '^/', maxLength: 4096 })),
  },
  { additionalProperties: false },
);
export type ConfigMount = Static<typeof ConfigMountSchema>;

/** Every key of an EdgeConfig as an environment variable (`prefix` + key). */
export const EnvFromSchema = Type.Object(
  { config: NameSchema, prefix: Type.Optional(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$', maxLength: 64 })) },
  { additionalProperties: false },
);
export type EnvFrom = Static<typeof EnvFromSchema>;

const commonFields = {
  /** Unique within the template. Default "main". */
  name: Type.Optional(NameSchema),
  args: Type.Optional(Type.Array(Type.String({ maxLength: 65536 }), { maxItems: 1024 })),
  env: Type.Optional(EnvSchema),
  envFrom: Type.Optional(Type.Array(EnvFromSchema, { maxItems: 32 })),
  configMounts: Type.Optional(Type.Array(ConfigMountSchema, { maxItems: 32 })),
  workingDir: Type.Optional(Type.String({ maxLength: 4096 })),
  resources: Type.Optional(ResourcesSchema),
  readinessProbe: Type.Optional(ProbeSchema),
  livenessProbe: Type.Optional(ProbeSchema),
};

/** A process started by the agent's process runtime. */
export const ProcessSpecSchema = Type.Object({ command: Type.String({ minLength: 1, maxLength: 4096 }), ...commonFields }, { additionalProperties: false });
export type ProcessSpec = Static<typeof ProcessSpecSchema>;

export const ContainerPortSchema = Type.Object(
  {
    containerPort: PortNumber,
    /** Published on the node (ignored with hostNetwork). */
    hostPort: Type.Optional(PortNumber),
    /** Default 0.0.0.0. */
    hostIP: Type.Optional(Type.String({ maxLength: 64 })),
    protocol: Type.Optional(Type.Union([Type.Literal('TCP'), Type.Literal('UDP')])),
  },
  { additionalProperties: false },
);

/** A host device given to a container, e.g. /dev/video0 for a camera. */
export const DeviceMappingSchema = Type.Object(
  {
    hostPath: Type.String({ pattern: '^/dev/', maxLength: 4096 }),
    /** Default: hostPath. */
    containerPath: Type.Optional(Type.String({ pattern: '^/', maxLength: 4096 })),
    /** Default rwm. */
    permissions: Type.Optional(Type.String({ pattern: '^[rwm]{1,3}$' })),
  },
  { additionalProperties: false },
);

/** A container run through the Docker Engine API (Docker or Podman). */
export const ContainerSpecSchema = Type.Object(
  {
    image: Type.String({ minLength: 1, maxLength: 1024 }),
    /** IfNotPresent (default): a cached image starts offline. Always: pull, and fall back to the cached image when the registry is unreachable. Never: cached only. */
    imagePullPolicy: Type.Optional(Type.Union([Type.Literal('IfNotPresent'), Type.Literal('Always'), Type.Literal('Never')])),
    /** Overrides the image's entrypoint. */
    command: Type.Optional(Type.Array(Type.String({ maxLength: 4096 }), { minItems: 1, maxItems: 64 })),
    ports: Type.Optional(Type.Array(ContainerPortSchema, { maxItems: 64 })),
    devices: Type.Optional(Type.Array(DeviceMappingSchema, { maxItems: 32 })),
    /** Signal that stops the container (default SIGTERM). */
    stopSignal: Type.Optional(Type.String({ pattern: '^SIG[A-Z0-9]+$', maxLength: 16 })),
    ...commonFields,
  },
  { additionalProperties: false },
);
export type ContainerSpec = Static<typeof ContainerSpecSchema>;

export const TolerationSchema = Type.Object(
  {
    key: Type.Optional(Type.String({ maxLength: 317 })),
    /** Equal (default) or Exists (any value; with no key, tolerates every taint). */
    operator: Type.Optional(Type.Union([Type.Literal('Equal'), Type.Literal('Exists')])),
    value: Type.Optional(Type.String({ maxLength: 63 })),
    /** Empty: every effect. */
    effect: Type.Optional(Type.Union([Type.Literal('NoSchedule'), Type.Literal('PreferNoSchedule')])),
  },
  { additionalProperties: false },
);
export type Toleration = Static<typeof TolerationSchema>;

export const TaintSchema = Type.Object(
  {
    key: Type.String({ minLength: 1, maxLength: 317 }),
    value: Type.Optional(Type.String({ maxLength: 63 })),
    /** NoSchedule: no new instance without a toleration. PreferNoSchedule: only when no other node fits. */
    effect: Type.Union([Type.Literal('NoSchedule'), Type.Literal('PreferNoSchedule')]),
  },
  { additionalProperties: false },
);
export type Taint = Static<typeof TaintSchema>;

/**
 * EdgeApp `spec.service`: every instance of the app is registered in its node's local service
 * registry under this name (README "Local service registry"), health following its readiness.
 */
export const AppServiceSchema = Type.Object(
  {
    /** A DNS label: the instances answer at <name>.outpost and <name>.<unit>.outpost. */
    name: Type.String({ pattern: '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$', maxLength: 63 }),
    port: PortNumber,
    /** Default tcp. */
    protocol: Type.Optional(Type.Union([Type.Literal('tcp'), Type.Literal('udp'), Type.Literal('http'), Type.Literal('https'), Type.Literal('grpc')])),
    metadata: Type.Optional(Type.Record(Type.String({ pattern: '^[A-Za-z0-9._/-]{1,63}$' }), Type.String({ maxLength: 512 }), { additionalProperties: false, maxProperties: 32 })),
    /** 1..1000, default 100. */
    weight: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
  },
  { additionalProperties: false },
);
export type AppService = Static<typeof AppServiceSchema>;

export const AppTemplateSchema = Type.Object(
  {
    /** Copied by the hub from EdgeApp spec.service (so overrides can patch /service); the agent registers each instance under it. */
    service: Type.Optional(AppServiceSchema),
    processes: Type.Optional(Type.Array(ProcessSpecSchema, { minItems: 1, maxItems: 1 })),
    containers: Type.Optional(Type.Array(ContainerSpecSchema, { minItems: 1, maxItems: 1 })),
    /** Default Always. */
    restartPolicy: Type.Optional(RestartPolicySchema),
    /** Seconds between the stop signal and SIGKILL. Default 10. */
    terminationGracePeriodSeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 3600 })),
    /** Containers share the node's network (no port mapping). */
    hostNetwork: Type.Optional(Type.Boolean()),
    /** Only nodes (of the unit) with these labels. */
    nodeSelector: Type.Optional(LabelsSchema),
    tolerations: Type.Optional(Type.Array(TolerationSchema, { maxItems: 32 })),
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
