import { isIP } from 'node:net';
import type { ListenInfo } from '../engine/engine.js';
import type { HostEvent } from '../events.js';
import { Heartwatch } from '../heartwatch.js';
import { type HeartwatchOptions, maxThreads, maxTimeoutMs } from '../options.js';
import { formatUdpAddress } from '../sender/udp-address.js';
import type { TcpOptions } from '../tcp-options.js';
import {
  type Command,
  optionErrorAsUsage,
  parseDuration,
  parseFlags,
  parseInteger,
  UsageError,
  untilSignal,
} from './args.js';
import {
  count,
  eventJson,
  eventTextBatch,
  fitWidth,
  statusLine,
  stormJson,
  stormText,
  timeoutRule,
} from './format.js';
import { readKeyFile } from './key-file.js';
import { Logger } from './log.js';
import { applyTableFlags, flagHelp, tableFlagOf, tableFlagSpec } from './option-flags.js';
import { mergeSources, namingSources } from './serve-config.js';
import { parseOperations, startOperations } from './serve-ops.js';
import { SourceWatch } from './source-watch.js';

const spec = {
  ...tableFlagSpec,
  cpus: { type: 'string' },
  'tcp-port': { type: 'string' },
  'tcp-host': { type: 'string' },
  'tcp-reactors': { type: 'string' },
  'tcp-max-connections': { type: 'string' },
  'tcp-idle-timeout': { type: 'string' },
  'tcp-close-means-down': { type: 'boolean' },
  json: { type: 'boolean' },
  'auth-key-file': { type: 'string' },
  'auth-required': { type: 'boolean' },
  allow: { type: 'string' },
  http: { type: 'string' },
  'stats-interval': { type: 'string' },
  config: { type: 'string' },
} as const;

/** Library option -> CLI flag, to phrase option errors in the user's terms. */
const flagOf: Record<string, string> = { ...tableFlagOf, cpus: '--cpus', allow: '--allow' };

const help = `Usage: heartwatch serve [flags]

Runs a heartwatch server: listens for UDP heartbeats and prints one line per host event
(up, down, restart). Logs and warnings go to stderr; "listening on IP:PORT" is printed there
once every socket is bound, then the timeout rule ("timeout: 3 x announced interval, else
5000 ms"). Ctrl-C (SIGINT) or SIGTERM closes it cleanly (exit 0).

Flags:
${flagHelp('port')}
${flagHelp('host')}
${flagHelp('timeoutMs')}
${flagHelp('missedBeats')}
${flagHelp('identity')}
${flagHelp('receivers')}
${flagHelp('workers')}
  --cpus LIST          CPUs to pin threads to, e.g. 0,1; "none" to not pin (default all)
${flagHelp('maxHosts')}
${flagHelp('maxStatusBytes')}
${flagHelp('statusBudgetBytes')}
${flagHelp('engine')}
  --tcp-port N         also take heartbeat frames over TCP on this port (default off)
  --tcp-host IP        bind address for TCP                              (default --host)
  --tcp-reactors N     TCP reactor threads, one epoll loop each          (default 1)
  --tcp-max-connections N  open TCP connections at most; more are reset (default 65536)
  --tcp-idle-timeout D close a TCP connection with no frame for D       (default 60s)
  --tcp-close-means-down  a TCP connection closing without LEAVE downs the host it
                       carried, reason "disconnected" (default off: heartbeats decide)
${flagHelp('forgetAfterMs')}
  --json               one JSON object per event per line on stdout
  --auth-key-file F    check heartbeat tags with the keys in F: one hex key per line, the
                       first signs, all verify; F must be mode 0600 (not group/other readable)
  --auth-required      drop heartbeats without a valid tag (needs --auth-key-file); without
                       it both are accepted and unsigned ones counted
  --allow LIST         accept heartbeats only from these prefixes, e.g. 10.0.0.0/8,fd00::/8
                       (TCP: by the peer's address)
  --http [HOST:]PORT   serve /metrics (Prometheus), /healthz, /stats, /hosts, /hosts/<id>,
                       /events (SSE) and a live page at / over HTTP; HOST defaults to
                       127.0.0.1 (off by default)
  --stats-interval D   a stats line on stderr every D when stderr is not a terminal;
                       0: none                                           (default 60s)
  --config FILE        a JSON object of flag values, keys without "--": {"port": 7700}
  -h, --help           show this help

Every flag can also be set by an environment variable, HEARTWATCH_ and the flag name in capitals
with _ for - (HEARTWATCH_PORT, HEARTWATCH_MAX_HOSTS, HEARTWATCH_JSON=1), or in --config.
Precedence: flags, then the environment, then the file.

When stderr is not a terminal (systemd, docker, a pipe), log lines are JSON objects with pino's
fields: {"level":30,"time":1764547200000,"pid":1,"hostname":"h","msg":"listening on ..."}
(level 30 info, 40 warning, 50 error). SIGHUP is logged and ignored.

Durations: plain milliseconds or 500ms, 10s, 2m, 1h.

Output without --json: one line per event (a burst: the first 10 of a batch, then one line
counting the rest); on a terminal also a status line, cut to its width, refreshed every second
(hosts up/down/tracked, packets per second, malformed, kernel and ring drops, and once any was
rejected, the auth counters).

--json lines (exactly these keys, in this order; times are ISO 8601 UTC):
  {"event":"up","id":"42","address":"10.0.0.7:5000","time":"...","recovered":false}
  {"event":"down","id":"42","address":"10.0.0.7:5000","time":"...","reason":"timeout","lastSeen":"...","timeoutMs":5000}
  {"event":"restart","id":"42","address":"10.0.0.7:5000","time":"...","incarnation":7,"previousIncarnation":3}
  {"event":"storm","phase":"start","time":"...","downs":600,"hosts":1000}
  {"event":"storm","phase":"end","time":"...","downs":1000,"hosts":1000}
"reason" is "timeout", "left" (the host sent LEAVE) or "disconnected" (its TCP connection
closed, with --tcp-close-means-down). A down may end with "uncertain":true
(datagrams were lost around its deadline) and "storm":true (it came in a mass failure).

Backpressure: while stdout is not being read (a slow or stopped reader), serve takes no more
events from the engine. They wait there in order, and once a ring's worth waits the engine stops
declaring hosts down until the reader catches up: memory stays bounded and no event is lost;
downs come late, never dropped. A reader that closes the pipe ends serve cleanly (exit 0).

Exit codes: 0 closed by a signal or by the reader closing stdout, 1 runtime error (e.g. EADDRINUSE), 2 usage error (a bad
flag, environment variable or --config file).

Example:
  heartwatch serve --port 7700 --timeout 3s --json | jq .
`;

function serveOptions(values: ReturnType<typeof parseFlags<typeof spec>>): HeartwatchOptions {
  const options: HeartwatchOptions = {};
  applyTableFlags(values, options);
  if (values.cpus !== undefined) options.cpus = parseCpus(values.cpus);
  if (values['auth-key-file'] !== undefined) {
    options.auth = {
      keys: readKeyFile('serve', values['auth-key-file']).keys,
      required: values['auth-required'] === true,
    };
  } else if (values['auth-required'] === true) {
    throw new UsageError('heartwatch serve: --auth-required needs --auth-key-file F');
  }
  if (values.allow !== undefined) options.allow = values.allow.split(',').map((p) => p.trim());
  const tcp = tcpOptions(values);
  if (tcp !== undefined) options.tcp = tcp;
  return options;
}

function tcpOptions(values: ReturnType<typeof parseFlags<typeof spec>>): TcpOptions | undefined {
  const others = [
    'tcp-host',
    'tcp-reactors',
    'tcp-max-connections',
    'tcp-idle-timeout',
    'tcp-close-means-down',
  ] as const;
  if (values['tcp-port'] === undefined) {
    const stray = others.find((flag) => values[flag] !== undefined);
    if (stray !== undefined) {
      throw new UsageError(`heartwatch serve: --${stray} needs --tcp-port (TCP is off without it)`);
    }
    return undefined;
  }
  const tcp: TcpOptions = {
    port: parseInteger('serve', '--tcp-port', values['tcp-port'], 0, 65535),
  };
  const host = values['tcp-host'];
  if (host !== undefined) {
    if (isIP(host) === 0) {
      throw new UsageError(
        `heartwatch serve: --tcp-host must be an IP address such as ::, 0.0.0.0 or 127.0.0.1, got "${host}"`,
      );
    }
    tcp.host = host;
  }
  if (values['tcp-reactors'] !== undefined) {
    tcp.reactors = parseInteger('serve', '--tcp-reactors', values['tcp-reactors'], 1, maxThreads());
  }
  if (values['tcp-max-connections'] !== undefined) {
    const text = values['tcp-max-connections'];
    tcp.maxConnections = parseInteger('serve', '--tcp-max-connections', text, 1, 2 ** 24);
  }
  if (values['tcp-idle-timeout'] !== undefined) {
    const text = values['tcp-idle-timeout'];
    tcp.idleTimeoutMs = parseDuration('serve', '--tcp-idle-timeout', text, 1, maxTimeoutMs);
  }
  if (values['tcp-close-means-down'] === true) tcp.closeMeansDown = true;
  return tcp;
}

/** The list's syntax; which CPUs are allowed (the affinity mask) is checked with the options. */
function parseCpus(text: string): number[] | null {
  if (text === 'none') return null;
  const parsed = text.split(',').map((item) => (/^[0-9]+$/.test(item) ? Number(item) : Number.NaN));
  if (parsed.some((cpu) => Number.isNaN(cpu)) || new Set(parsed).size !== parsed.length) {
    throw new UsageError(
      `heartwatch serve: --cpus must be "none" or distinct CPU numbers separated by commas (e.g. 0,1), got "${text}"`,
    );
  }
  return parsed;
}

/**
 * Writes events to stdout. On a terminal (without --json) it keeps a status line under the
 * events: each write erases it, prints the events, and draws it again.
 */
class EventPrinter {
  #status: (() => string) | undefined;
  readonly #json: boolean;
  readonly #live: boolean;

  constructor(json: boolean) {
    this.#json = json;
    this.#live = !json && process.stdout.isTTY === true;
  }

  get live(): boolean {
    return this.#live;
  }

  /** Returns false when stdout's buffer is full: the caller stops the events until 'drain'. */
  events(batch: HostEvent[]): boolean {
    let text = '';
    if (this.#json) for (const event of batch) text += `${eventJson(event)}\n`;
    else text = eventTextBatch(batch);
    return this.#write(text);
  }

  /** One line that is not a host event (a storm). */
  line(text: string): void {
    this.#write(`${text}\n`);
  }

  /** Draws the status line now and after every batch of events, from fresh counters. */
  status(line: () => string): void {
    this.#status = line;
    this.#write('');
  }

  finish(): void {
    if (this.#live && this.#status !== undefined && !process.stdout.destroyed) {
      process.stdout.write('\r\x1b[K');
    }
    this.#status = undefined;
  }

  #write(text: string): boolean {
    if (this.#live) return process.stdout.write(`\r\x1b[K${text}${this.#status?.() ?? ''}`);
    return text === '' || process.stdout.write(text);
  }
}

/**
 * Prints hw's events with backpressure: when stdout's buffer is full (a reader that stops
 * reading), hw is paused until stdout drains, so events wait in the engine, in order and bounded,
 * instead of in an ever-growing buffer. `closed` resolves when the reader closes the pipe, which
 * ends serve like a signal does. `detach()` stops following drain, and printing once stdout is gone.
 */
function printEvents(hw: Heartwatch, printer: EventPrinter) {
  const onEvents = (batch: HostEvent[]): void => {
    if (!process.stdout.destroyed && !printer.events(batch)) hw.pause();
  };
  const resume = (): void => hw.resume();
  hw.on('events', onEvents);
  process.stdout.on('drain', resume);
  const closed = new Promise<string>((resolve) => {
    process.stdout.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') resolve('stdout closed (EPIPE)');
    });
  });
  const detach = (): void => {
    process.stdout.off('drain', resume);
    if (process.stdout.destroyed) hw.off('events', onEvents);
  };
  return { closed, detach };
}

async function run(argv: string[]): Promise<number> {
  const log = new Logger();
  const merged = mergeSources(spec, parseFlags('serve', argv, spec), process.env);
  const values = merged.values as ReturnType<typeof parseFlags<typeof spec>>;
  const options = namingSources(merged.sources, () => serveOptions(values));
  const operations = namingSources(merged.sources, () => parseOperations(values));
  for (const warning of merged.warnings)
    log.warn(`heartwatch serve: warning: ${warning}`, {}, warning);
  let hw: Heartwatch;
  try {
    hw = new Heartwatch(options);
  } catch (err) {
    throw optionErrorAsUsage('serve', err, flagOf);
  }
  const printer = new EventPrinter(values.json === true);
  const stop = untilSignal();
  const output = printEvents(hw, printer);
  hw.on('storm', (storm) => {
    if (!process.stdout.destroyed)
      printer.line(values.json === true ? stormJson(storm) : stormText(storm));
  });
  hw.on('warning', (warning) => {
    printer.finish();
    log.warn(
      `heartwatch serve: warning: ${warning.message}`,
      { code: warning.code },
      warning.message,
    );
  });
  hw.on('error', (err) => {
    printer.finish();
    log.error(`heartwatch serve: error: ${err.message}`, {}, err.message);
  });

  let info: ListenInfo;
  try {
    info = await hw.listen();
  } catch (err) {
    // Whatever did start (threads, other sockets) is torn down before the error is reported.
    await hw.close().catch(() => undefined);
    throw err;
  }
  const stats = hw.stats();
  log.info(
    `listening on ${formatUdpAddress(info)}${tcpListening(info, options)} (engine ${stats.engine}, ${stats.receivers.length} receiver(s), ${stats.workers.length} worker(s), SO_RCVBUF ${count(info.recvBufferBytes)} bytes)`,
    { address: formatUdpAddress(info), engine: stats.engine },
  );
  const { timeoutMs, missedBeats } = hw.options;
  log.info(`timeout: ${timeoutRule(timeoutMs, missedBeats)}`, { timeoutMs, missedBeats });
  const ops = await startOperations(hw, operations, log).catch(async (err: unknown) => {
    await hw.close().catch(() => undefined);
    throw err;
  });
  const sources = new SourceWatch(hw, log);
  process.on('SIGHUP', () =>
    log.info(
      'heartwatch serve: SIGHUP ignored (restart to reload)',
      {},
      'SIGHUP ignored (restart to reload)',
    ),
  );

  let timer: NodeJS.Timeout | undefined;
  if (printer.live) {
    let last = { at: performance.now(), received: stats.received };
    let perSecond = 0;
    printer.status(() => fitWidth(statusLine(hw.stats(), perSecond), process.stdout.columns));
    timer = setInterval(() => {
      const now = { at: performance.now(), received: hw.stats().received };
      perSecond = ((now.received - last.received) * 1000) / Math.max(1, now.at - last.at);
      last = now;
      printer.status(() => fitWidth(statusLine(hw.stats(), perSecond), process.stdout.columns));
    }, 1000);
  }

  const reason = await Promise.race([stop, output.closed]);
  output.detach();
  if (timer !== undefined) clearInterval(timer);
  printer.finish();
  log.info(`heartwatch serve: ${reason}, closing`, { reason }, `${reason}, closing`);
  ops.stop('closing');
  sources.stop();
  await hw.close();
  await ops.close();
  const final = hw.stats();
  const closed = `closed after ${count(final.received)} datagrams and ${count(final.eventsDelivered)} events`;
  log.info(`heartwatch serve: ${closed}`, {}, closed);
  return 0;
}

/** ", TCP IP:PORT" when TCP is on: the TCP host may differ from the UDP one (--tcp-host). */
function tcpListening(info: ListenInfo, options: HeartwatchOptions): string {
  if (info.tcpPort === null) return '';
  const host = options.tcp?.host ?? info.host;
  return `, TCP ${formatUdpAddress({ host, port: info.tcpPort })}`;
}

export const serve: Command = {
  name: 'serve',
  summary: 'run a server and print host up/down/restart events (--json for JSON lines)',
  help,
  run,
};
