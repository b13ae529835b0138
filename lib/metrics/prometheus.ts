import type * as PromClientModule from 'prom-client';
import { HeartwatchError } from '../errors.js';
import type { Heartwatch } from '../heartwatch.js';
import type { HeartwatchStats } from '../stats.js';
import { EventTally, transitionKinds } from './event-tally.js';

type Labels = Record<string, string>;
interface Sample {
  labels: Labels;
  value: number;
  metricName?: string;
}

/** One metric read from a scrape's single `stats()` snapshot. */
interface StatsMetric {
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  samples(stats: HeartwatchStats): Sample[];
}

const one = (value: number, labels: Labels = {}): Sample => ({ labels, value });

/**
 * Every metric that `stats()` answers, one entry each: adding a counter to the stats (the
 * receive watermark lag, suppressed expiries, TCP connections) is one more line here.
 */
export const statsMetrics: readonly StatsMetric[] = [
  {
    name: 'heartwatch_hosts',
    help: 'Tracked hosts by state.',
    type: 'gauge',
    samples: (s) => [one(s.hostsUp, { state: 'up' }), one(s.hostsDown, { state: 'down' })],
  },
  {
    name: 'heartwatch_heartbeats_received_total',
    help: 'Datagrams received, valid or not, by transport.',
    type: 'counter',
    samples: (s) => [one(s.received, { transport: 'udp' })],
  },
  {
    name: 'heartwatch_heartbeats_rejected_total',
    help: 'Heartbeats dropped by reason: malformed (not wire v1), auth_unsupported (signed, but this server has no key), auth_failed (a wrong, cut or altered tag), not_allowed (a source outside allow), replayed (a signed heartbeat seen before), host_limit (a new host beyond maxHosts).',
    type: 'counter',
    samples: (s) => [
      one(s.malformed, { reason: 'malformed' }),
      one(s.authUnsupported, { reason: 'auth_unsupported' }),
      one(s.authFailed, { reason: 'auth_failed' }),
      one(s.notAllowed, { reason: 'not_allowed' }),
      one(s.replayed, { reason: 'replayed' }),
      one(s.refused, { reason: 'host_limit' }),
    ],
  },
  {
    name: 'heartwatch_dropped_total',
    help: 'Heartbeats lost by place: socket (the kernel receive buffer was full), ring (a receiver-to-worker ring was full).',
    type: 'counter',
    samples: (s) => [one(s.kernelDrops, { where: 'socket' }), one(s.ringDrops, { where: 'ring' })],
  },
  {
    name: 'heartwatch_events_pending',
    help: 'Events produced by the engine and not yet handed to JavaScript.',
    type: 'gauge',
    samples: (s) => [one(s.eventsPending)],
  },
  {
    name: 'heartwatch_events_delivered_total',
    help: 'Events handed to JavaScript.',
    type: 'counter',
    samples: (s) => [one(s.eventsDelivered)],
  },
  {
    name: 'heartwatch_watermark_lag_seconds',
    help: 'How far behind the clock expiry is held: now minus the oldest receive watermark (every heartbeat that arrived before it has been read).',
    type: 'gauge',
    samples: (s) => [one(s.watermarkLagMs / 1000)],
  },
  {
    name: 'heartwatch_expiry_waits_total',
    help: 'Expiry passes that held a due deadline back until the receivers had read up to it.',
    type: 'counter',
    samples: (s) => [one(s.expiryWaits)],
  },
  {
    name: 'heartwatch_lossy_deferred_total',
    help: 'Deadlines that fell in a window where heartbeats were lost, given one more timeout.',
    type: 'counter',
    samples: (s) => [one(s.lossyDeferred)],
  },
  {
    name: 'heartwatch_uncertain_downs_total',
    help: 'Downs declared after such a deferral (flagged uncertain).',
    type: 'counter',
    samples: (s) => [one(s.uncertainDowns)],
  },
  {
    name: 'heartwatch_tcp_frames_rejected_total',
    help: 'TCP frames dropped by reason, as heartwatch_heartbeats_rejected_total for datagrams: auth_unsupported (signed, but this server has no key), auth_failed (a wrong or altered tag), not_allowed (a peer outside allow). No samples without tcp.',
    type: 'counter',
    samples: (s) =>
      s.tcp === null
        ? []
        : [
            one(s.tcp.authUnsupported, { reason: 'auth_unsupported' }),
            one(s.tcp.authFailed, { reason: 'auth_failed' }),
            one(s.tcp.notAllowed, { reason: 'not_allowed' }),
          ],
  },
  {
    name: 'heartwatch_tcp_auth_slots_full_total',
    help: "TCP connections closed because a signed frame spanning reads found none of its reactor's hashing slots free (native engine). No samples without tcp.",
    type: 'counter',
    samples: (s) => (s.tcp === null ? [] : [one(s.tcp.authSlotsFull)]),
  },
  {
    name: 'heartwatch_tcp_status_slots_full_total',
    help: "TCP statuses refused (their heartbeats kept) because a status spanning reads found none of its reactor's status slots free (native engine). No samples without tcp.",
    type: 'counter',
    samples: (s) => (s.tcp === null ? [] : [one(s.tcp.statusSlotsFull)]),
  },
  {
    name: 'heartwatch_address_changes_total',
    help: "Heartbeats from another source than their host's previous one (two senders sharing an id, when it keeps rising).",
    type: 'counter',
    samples: (s) => [one(s.addressChanges)],
  },
];

/**
 * The part of a prom-client `Registry` heartwatch uses. Declared here, not imported, so the
 * published types need prom-client only where it is installed: it is an optional peer.
 */
export interface MetricsRegistry {
  registerMetric(metric: never): void;
  removeSingleMetric(name: string): void;
  metrics(): Promise<string>;
  readonly contentType: string;
}

/** What {@link registerMetrics} returns. */
export interface HeartwatchMetrics {
  /** The registry the metrics were added to. */
  readonly registry: MetricsRegistry;
  /** The event counts behind the transition and lateness metrics (shared with the live page). */
  readonly tally: EventTally;
  /** Removes heartwatch's metrics from the registry and stops counting events. */
  dispose(): void;
}

/** Options of {@link registerMetrics}. */
export interface RegisterMetricsOptions {
  /** A prom-client `Registry` to add to. Default: a new one. */
  registry?: MetricsRegistry | undefined;
  /** Also add prom-client's default process and Node.js metrics (`collectDefaultMetrics`). Default false. */
  defaultMetrics?: boolean | undefined;
  /** An existing tally to read transitions and lateness from, instead of a new one. */
  tally?: EventTally | undefined;
}

type PromClient = typeof PromClientModule;

/** Loads prom-client, an optional peer dependency, only when metrics are asked for. */
function loadPromClient(): PromClient {
  try {
    return require('prom-client') as PromClient;
  } catch (err) {
    throw new HeartwatchError(
      'ERR_HW_PROM_CLIENT_MISSING',
      'metrics need the optional peer dependency prom-client: npm install prom-client',
      { cause: err },
    );
  }
}

/**
 * Adds heartwatch's metrics to a prom-client registry (prom-client is loaded now, not before).
 * A scrape reads `hw.stats()` once, whatever the number of metrics: the first metric collected
 * in a scrape takes the snapshot and the others reuse it until the scrape's tick ends.
 *
 * ```ts
 * const { registry } = registerMetrics(hw, { defaultMetrics: true });
 * res.end(await registry.metrics());
 * ```
 */
export function registerMetrics(
  hw: Heartwatch,
  options: RegisterMetricsOptions = {},
): HeartwatchMetrics {
  const prom = loadPromClient();
  const registry: MetricsRegistry = options.registry ?? new prom.Registry();
  const tally = options.tally ?? new EventTally(hw);
  let cached: HeartwatchStats | undefined;
  const snapshot = (): HeartwatchStats => {
    if (cached === undefined) {
      cached = hw.stats();
      setImmediate(() => {
        cached = undefined;
      });
    }
    return cached;
  };
  const names: string[] = [];
  const add = (name: string, help: string, type: string, values: () => Sample[]): void => {
    registry.registerMetric({
      name,
      help,
      type,
      aggregator: 'sum',
      get: () => ({ name, help, type, aggregator: 'sum', values: values() }),
    } as never);
    names.push(name);
  };
  for (const metric of statsMetrics) {
    add(metric.name, metric.help, metric.type, () => metric.samples(snapshot()));
  }
  add(
    'heartwatch_transitions_total',
    'Host transitions handed to JavaScript, by kind.',
    'counter',
    () => transitionKinds.map((kind) => one(tally.transitions[kind], { kind })),
  );
  add(
    'heartwatch_detection_lateness_seconds',
    'How long after its deadline (last heartbeat + timeout) each timeout down was declared; observed with missedBeats 0 only, where every host has the same deadline rule.',
    'histogram',
    () => latenessSamples(tally),
  );
  add('heartwatch_info', 'The engine that runs (always 1).', 'gauge', () => [
    one(1, { engine: hw.engine }),
  ]);
  if (options.defaultMetrics === true) {
    prom.collectDefaultMetrics({ register: registry as PromClientModule.Registry });
  }
  return {
    registry,
    tally,
    dispose: () => {
      for (const name of names) registry.removeSingleMetric(name);
      if (options.tally === undefined) tally.dispose();
    },
  };
}

function latenessSamples(tally: EventTally): Sample[] {
  const name = 'heartwatch_detection_lateness_seconds';
  const h = tally.lateness();
  const samples: Sample[] = h.buckets.map((le, i) => ({
    metricName: `${name}_bucket`,
    labels: { le: String(le) },
    value: h.counts[i] as number,
  }));
  samples.push({ metricName: `${name}_bucket`, labels: { le: '+Inf' }, value: h.count });
  samples.push({ metricName: `${name}_sum`, labels: {}, value: h.sum });
  samples.push({ metricName: `${name}_count`, labels: {}, value: h.count });
  return samples;
}
