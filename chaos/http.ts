import { request, type IncomingMessage } from 'node:http';

export interface HttpResponse {
  status: number;
  text: string;
}

export interface HttpOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  /** Whole-request deadline, ms (a SIGSTOPped server never answers). */
  timeoutMs: number;
  signal?: AbortSignal;
}

/**
 * One HTTP request on a fresh connection (no keep-alive pool). The servers the harness talks to
 * are killed and frozen all the time; with a connection pool, sockets of a killed or frozen peer
 * outlive the run and keep the process alive. Here every socket is destroyed when its request
 * ends, fails or times out.
 */
export function httpRequest(url: string, options: HttpOptions): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: options.method ?? 'GET', headers: options.headers, agent: false });
    const timer = setTimeout(() => req.destroy(new Error(`${options.method ?? 'GET'} ${url}: no answer within ${options.timeoutMs} ms`)), options.timeoutMs);
    const onAbort = () => req.destroy(new Error('aborted'));
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const done = () => {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
    };
    req.on('error', (err) => {
      done();
      reject(err);
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', (err) => {
        done();
        reject(err);
      });
      res.on('end', () => {
        done();
        req.destroy();
        resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') });
      });
    });
    req.end(options.body);
  });
}

/**
 * A streaming GET (watch): calls `onLine` for every non-empty line until the server ends the
 * stream, the connection breaks or `signal` aborts. Resolves with the status; rejects on transport
 * errors. Non-2xx bodies are not streamed.
 */
export function httpLines(url: string, options: { headers?: Record<string, string>; signal: AbortSignal; onLine(line: string): void }): Promise<number> {
  return new Promise((resolve, reject) => {
    if (options.signal.aborted) {
      resolve(0);
      return;
    }
    const req = request(url, { headers: options.headers, agent: false });
    const onAbort = () => req.destroy();
    options.signal.addEventListener('abort', onAbort, { once: true });
    const finish = (fn: () => void) => {
      options.signal.removeEventListener('abort', onAbort);
      req.destroy();
      fn();
    };
    req.on('error', (err) => finish(() => (options.signal.aborted ? resolve(0) : reject(err))));
    req.on('response', (res: IncomingMessage) => {
      const status = res.statusCode ?? 0;
      if (status < 200 || status >= 300) {
        res.resume();
        finish(() => resolve(status));
        return;
      }
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (!line) continue;
          try {
            options.onLine(line);
          } catch (err) {
            finish(() => reject(err instanceof Error ? err : new Error(String(err))));
            return;
          }
        }
      });
      res.on('error', (err) => finish(() => (options.signal.aborted ? resolve(status) : reject(err))));
      res.on('end', () => finish(() => resolve(status)));
      res.on('close', () => finish(() => resolve(status)));
    });
    req.end();
  });
}
