import type { Heartwatch } from '../heartwatch.js';
import { type HttpAddress, HttpApi } from '../http/server.js';
import { type HeartwatchMetrics, registerMetrics } from '../metrics/prometheus.js';
import { formatDuration, parseDuration } from './args.js';
import type { Logger } from './log.js';
import { parseHttpAddress } from './serve-config.js';

/** What `serve` runs beside the engine for operators: the HTTP API and the stats lines. */
export interface Operations {
  http: { host: string; port: number } | undefined;
  /** Stats line period on stderr when it is not a terminal; 0 turns them off. */
  statsIntervalMs: number;
}

/** The longest `--stats-interval`: one day. */
const maxStatsIntervalMs = 86_400_000;

export function parseOperations(values: {
  http?: string | undefined;
  'stats-interval'?: string | undefined;
}): Operations {
  return {
    http: values.http === undefined ? undefined : parseHttpAddress(values.http),
    statsIntervalMs:
      values['stats-interval'] === undefined
        ? 60_000
        : parseDuration(
            'serve',
            '--stats-interval',
            values['stats-interval'],
            0,
            maxStatsIntervalMs,
          ),
  };
}

/** One stats record: the totals, and the datagram rate since the previous one. */
function statsFields(
  hw: Heartwatch,
  previous: { at: number; received: number },
): Record<string, unknown> {
  const s = hw.stats();
  const at = performance.now();
  const perSecond = ((s.received - previous.received) * 1000) / Math.max(1, at - previous.at);
  previous.at = at;
  previous.received = s.received;
  return {
    hostsUp: s.hostsUp,
    hostsDown: s.hostsDown,
    trackedHosts: s.trackedHosts,
    received: s.received,
    receivedPerSecond: Math.round(perSecond),
    malformed: s.malformed,
    authUnsupported: s.authUnsupported,
    kernelDrops: s.kernelDrops,
    ringDrops: s.ringDrops,
    refused: s.refused,
    eventsPending: s.eventsPending,
    eventsDelivered: s.eventsDelivered,
  };
}

/** The running operator side of `serve`; `stop` before closing the engine, `close` after. */
export interface RunningOperations {
  /** Marks `/healthz` unavailable and stops the stats lines. */
  stop(reason: string): void;
  /** Ends `/events` streams and closes the HTTP listener. */
  close(): Promise<void>;
}

function loadMetrics(hw: Heartwatch, log: Logger): { metrics?: HeartwatchMetrics; why?: string } {
  try {
    return { metrics: registerMetrics(hw, { defaultMetrics: true }) };
  } catch (err) {
    if ((err as { code?: unknown }).code !== 'ERR_HW_PROM_CLIENT_MISSING') throw err;
    const why = (err as Error).message;
    log.warn(`heartwatch serve: warning: /metrics is off: ${why}`, {}, `/metrics is off: ${why}`);
    return { why };
  }
}

/**
 * Starts the HTTP API (when `--http` is given) and the periodic stats line (when stderr is not
 * a terminal). The engine must be listening already: `/healthz` answers 200 from the start.
 */
export async function startOperations(
  hw: Heartwatch,
  ops: Operations,
  log: Logger,
): Promise<RunningOperations> {
  let api: HttpApi | undefined;
  if (ops.http !== undefined) {
    const { metrics, why } = loadMetrics(hw, log);
    api = new HttpApi(hw, { ...ops.http, metrics, metricsUnavailable: why });
    const address: HttpAddress = await api.listen().catch(async (err: unknown) => {
      await api?.close();
      throw err;
    });
    const where = address.host.includes(':')
      ? `[${address.host}]:${address.port}`
      : `${address.host}:${address.port}`;
    log.info(`http on ${where}: /metrics /healthz /stats /hosts /events, live page at /`, {
      http: where,
    });
  }
  let timer: NodeJS.Timeout | undefined;
  if (log.json && ops.statsIntervalMs > 0) {
    const previous = { at: performance.now(), received: hw.stats().received };
    timer = setInterval(() => log.info('stats', statsFields(hw, previous)), ops.statsIntervalMs);
    log.info(`stats every ${formatDuration(ops.statsIntervalMs)}`);
  }
  return {
    stop: (reason) => {
      if (timer !== undefined) clearInterval(timer);
      api?.setUnhealthy(reason);
    },
    close: async () => {
      await api?.close();
    },
  };
}
