export type LifecycleState = 'starting' | 'running' | 'stopping' | 'stopped' | 'failed';

/** A long-lived component: main.ts starts them in order and stops them in reverse. */
export interface Component {
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Runs `stop` of every component in reverse start order, each bounded by the grace period. */
export async function stopAll(components: Component[], graceMs: number, onError: (name: string, err: unknown) => void): Promise<void> {
  for (const c of [...components].reverse()) {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        c.stop(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`${c.name} did not stop within ${graceMs} ms`)), graceMs);
        }),
      ]);
    } catch (err) {
      onError(c.name, err);
    } finally {
      clearTimeout(timer);
    }
  }
}

/**
 * Starts components in order. If one fails, those already started are stopped (in reverse) and
 * the error is rethrown, so a failed start leaves nothing running behind it.
 */
export async function startAll(components: Component[], graceMs: number, onError: (name: string, err: unknown) => void): Promise<void> {
  const started: Component[] = [];
  for (const c of components) {
    try {
      await c.start();
      started.push(c);
    } catch (err) {
      await stopAll(started, graceMs, onError);
      throw err;
    }
  }
}
