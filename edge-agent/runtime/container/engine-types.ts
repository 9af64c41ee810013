// The parts of the Docker Engine API (v1.41) that the container runtime reads and writes. Podman's
// compatible service answers with the same shapes.

/** One entry of `GET /containers/json`. */
export interface ContainerSummary {
  Id: string;
  Names?: string[];
  Image?: string;
  Labels?: Record<string, string> | null;
  /** created, running, paused, restarting, removing, exited, dead (Podman also: configured, stopped). */
  State?: string;
  Created?: number;
}

/** `GET /containers/{id}/json`, the fields used here. */
export interface ContainerInspect {
  Id: string;
  Name?: string;
  Created?: string;
  State: {
    Status?: string;
    Running?: boolean;
    Pid?: number;
    ExitCode?: number;
    OOMKilled?: boolean;
    Error?: string;
    StartedAt?: string;
    FinishedAt?: string;
  };
  Config?: { Labels?: Record<string, string> | null };
  NetworkSettings?: {
    IPAddress?: string;
    Networks?: Record<string, { IPAddress?: string } | null> | null;
  } | null;
  HostConfig?: { NetworkMode?: string };
}

export interface PortBinding {
  HostIp?: string;
  HostPort?: string;
}

export interface DeviceMapping {
  PathOnHost: string;
  PathInContainer: string;
  CgroupPermissions: string;
}

/** The body of `POST /containers/create`. */
export interface ContainerCreateBody {
  Image: string;
  Entrypoint?: string[];
  Cmd?: string[];
  Env: string[];
  WorkingDir?: string;
  Labels: Record<string, string>;
  ExposedPorts?: Record<string, Record<string, never>>;
  StopSignal?: string;
  /** Seconds. */
  StopTimeout?: number;
  Hostname?: string;
  Tty: false;
  OpenStdin: false;
  HostConfig: {
    /** The runtime restarts containers itself, so that every restart is seen and reported. */
    RestartPolicy: { Name: 'no' };
    NetworkMode?: string;
    PortBindings?: Record<string, PortBinding[]>;
    Binds?: string[];
    Devices?: DeviceMapping[];
    NanoCpus?: number;
    Memory?: number;
  };
}

/** One line of the pull progress stream of `POST /images/create`. */
export interface PullProgress {
  status?: string;
  id?: string;
  progressDetail?: { current?: number; total?: number };
  error?: string;
  errorDetail?: { message?: string };
}
