import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Heartwatch } from '../heartwatch.js';
import { EventTally, type LatenessHistogram, type TransitionKind } from '../metrics/event-tally.js';
import type { HeartwatchMetrics } from '../metrics/prometheus.js';
import type { HeartwatchStats } from '../stats.js';
import { EventStream, type EventStreamOptions } from './event-stream.js';
import { listHosts, oneHost } from './hosts-route.js';
import { pageHtml, pageScript } from './page.js';
import { HttpError, queryParams } from './params.js';

/** Options of {@link HttpApi}. */
export interface HttpApiOptions {
  /** Address to bind, an IP literal. Default `'127.0.0.1'`. */
  host?: string | undefined;
  /** TCP port, 0 for a free one. */
  port: number;
  /** Metrics for `/metrics`; without them `/metrics` answers 503 with `metricsUnavailable`. */
  metrics?: HeartwatchMetrics | undefined;
  /** Why there are no metrics, for the 503 (e.g. prom-client is not installed). */
  metricsUnavailable?: string | undefined;
  /** `/events` tuning. */
  events?: EventStreamOptions | undefined;
}

/** What `/stats` answers (and `heartwatch status` prints). */
export interface HttpSummary {
  /** When it was read, ms since the epoch. */
  time: number;
  stats: HeartwatchStats;
  transitions: Record<TransitionKind, number>;
  /** The detection-lateness histogram (see EventTally). */
  lateness: LatenessHistogram;
  /** `/events` streams open now, and how many were cut for not reading. */
  eventStream: { clients: number; slowClientsCut: number };
}

/** Where the HTTP API listens. */
export interface HttpAddress {
  host: string;
  port: number;
}

const json = 'application/json; charset=utf-8';

function send(res: ServerResponse, status: number, type: string, body: string | Buffer): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}

/** Static files of the live page; uPlot is read from its package once, at the first request. */
function asset(name: string): { type: string; body: string | Buffer } | undefined {
  switch (name) {
    case 'page.js':
      return { type: 'text/javascript; charset=utf-8', body: pageScript };
    case 'uPlot.iife.min.js':
      return {
        type: 'text/javascript; charset=utf-8',
        body: readFileSync(require.resolve('uplot/dist/uPlot.iife.min.js')),
      };
    case 'uPlot.min.css':
      return {
        type: 'text/css; charset=utf-8',
        body: readFileSync(require.resolve('uplot/dist/uPlot.min.css')),
      };
    default:
      return undefined;
  }
}

/**
 * heartwatch's HTTP API and live page on one `node:http` listener: `/` (the page), `/metrics`,
 * `/healthz`, `/stats`, `/hosts`, `/hosts/<id>`, `/events`. See docs/http.md. Every bad request
 * gets a JSON `{"error": "..."}` with a 4xx status; a handler that fails answers 500 and the
 * server goes on.
 *
 * Runs on: the JS thread.
 */
export class HttpApi {
  readonly #hw: Heartwatch;
  readonly #options: HttpApiOptions;
  readonly #server: Server;
  readonly #events: EventStream;
  readonly #tally: EventTally;
  readonly #ownTally: boolean;
  readonly #assets = new Map<string, { type: string; body: string | Buffer }>();
  #unhealthy: string | undefined;

  constructor(hw: Heartwatch, options: HttpApiOptions) {
    this.#hw = hw;
    this.#options = options;
    this.#ownTally = options.metrics === undefined;
    this.#tally = options.metrics?.tally ?? new EventTally(hw);
    this.#events = new EventStream(hw, options.events);
    this.#server = createServer((req, res) => this.#handle(req, res));
  }

  /** Binds the listener; rejects with the errno error (`EADDRINUSE`, ...). */
  listen(): Promise<HttpAddress> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#options.port, this.#options.host ?? '127.0.0.1', () => {
        this.#server.off('error', reject);
        const address = this.#server.address() as AddressInfo;
        resolve({ host: address.address, port: address.port });
      });
    });
  }

  /**
   * Makes `/healthz` answer 503 with `reason` (e.g. `"closing"`), or 200 again with `undefined`.
   */
  setUnhealthy(reason: string | undefined): void {
    this.#unhealthy = reason;
  }

  /** Ends the event streams and open connections, then closes the listener. */
  close(): Promise<void> {
    this.#events.close();
    if (this.#ownTally) this.#tally.dispose();
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    this.#route(req, res).catch((err: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const status = err instanceof HttpError ? err.status : 500;
      const message = err instanceof Error ? err.message : String(err);
      send(res, status, json, JSON.stringify({ error: message }));
    });
  }

  async #route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://heartwatch');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      throw new HttpError(405, `${req.method} is not allowed; this API is read-only (GET)`);
    }
    const path = url.pathname;
    if (path.startsWith('/hosts/')) return oneHost(this.#hw, path.slice('/hosts/'.length), res);
    if (path.startsWith('/assets/')) return this.#asset(path.slice('/assets/'.length), res);
    const route = this.#routes[path];
    if (route === undefined) {
      throw new HttpError(
        404,
        `no such path ${path}; paths: /, /metrics, /healthz, /stats, /hosts, /hosts/<id>, /events`,
      );
    }
    // /hosts checks its own parameters; the other paths take none.
    if (path !== '/hosts') queryParams(url, []);
    return route(req, res, url);
  }

  readonly #routes: Record<
    string,
    (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<void> | void
  > = {
    '/': (_req, res) => send(res, 200, 'text/html; charset=utf-8', pageHtml),
    '/metrics': (_req, res) => this.#metrics(res),
    '/healthz': (_req, res) => this.#health(res),
    '/stats': (_req, res) => send(res, 200, json, JSON.stringify(this.summary())),
    '/hosts': (_req, res, url) => listHosts(this.#hw, url, res),
    '/events': (req, res) => {
      this.#events.open(req, res);
    },
  };

  /** What `/stats` answers: the stats, the event tally and the lateness histogram. */
  summary(): HttpSummary {
    return {
      time: Date.now(),
      stats: this.#hw.stats(),
      transitions: this.#tally.transitions,
      lateness: this.#tally.lateness(),
      eventStream: { clients: this.#events.clients, slowClientsCut: this.#events.slowClientsCut },
    };
  }

  #asset(name: string, res: ServerResponse): void {
    let file = this.#assets.get(name);
    if (file === undefined) {
      file = asset(name);
      if (file === undefined) throw new HttpError(404, `no such asset ${name}`);
      this.#assets.set(name, file);
    }
    res.writeHead(200, { 'content-type': file.type, 'cache-control': 'max-age=3600' });
    res.end(file.body);
  }

  async #metrics(res: ServerResponse): Promise<void> {
    const metrics = this.#options.metrics;
    if (metrics === undefined) {
      throw new HttpError(503, this.#options.metricsUnavailable ?? 'metrics are not enabled');
    }
    const text = await metrics.registry.metrics();
    send(res, 200, metrics.registry.contentType, text);
  }

  #health(res: ServerResponse): void {
    if (this.#unhealthy !== undefined) {
      send(res, 503, json, JSON.stringify({ status: 'unavailable', reason: this.#unhealthy }));
      return;
    }
    send(res, 200, json, JSON.stringify({ status: 'ok', engine: this.#hw.engine }));
  }
}
