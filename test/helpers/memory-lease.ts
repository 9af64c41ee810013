import { OutpostError } from '../../shared/errors.js';
import type { LeaseClient, LeaseRecord, ObservedLease } from '../../cloud-hub/kube/leader-election.js';

/** One Lease in memory, shared by several electors, with the API server's resourceVersion rules. */
export class MemoryLease {
  private lease: ObservedLease | undefined;
  private rv = 0;
  /** While set, every request of the named identity fails (a partitioned replica) or hangs ('hang'). */
  readonly faults = new Map<string, 'fail' | 'hang'>();
  writes = 0;

  current(): ObservedLease | undefined {
    return this.lease && { record: { ...this.lease.record }, resourceVersion: this.lease.resourceVersion };
  }

  /** A client as seen by one replica. */
  client(identity: string): LeaseClient {
    const guard = async () => {
      const f = this.faults.get(identity);
      if (f === 'fail') throw new OutpostError('UNAVAILABLE', 'API server unreachable (test fault)');
      if (f === 'hang') await new Promise<never>(() => undefined);
    };
    return {
      get: async () => { await guard(); return this.current(); },
      create: async (record: LeaseRecord) => {
        await guard();
        if (this.lease) throw new OutpostError('ALREADY_EXISTS', 'lease exists');
        return this.write(record);
      },
      update: async (record: LeaseRecord, resourceVersion: string) => {
        await guard();
        if (!this.lease) throw new OutpostError('NOT_FOUND', 'no lease');
        if (this.lease.resourceVersion !== resourceVersion) throw new OutpostError('CONFLICT', 'stale resourceVersion');
        return this.write(record);
      },
    };
  }

  private write(record: LeaseRecord): ObservedLease {
    this.writes++;
    this.lease = { record: { ...record }, resourceVersion: String(++this.rv) };
    return this.current() as ObservedLease;
  }
}
