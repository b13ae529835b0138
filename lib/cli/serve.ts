import { isIP } from 'node:net';
import { availableParallelism } from 'node:os';
import type { ListenInfo } from '../engine/engine.js';
import type { HostEvent } from '../events.js';
import { Heartwatch } from '../heartwatch.js';
import { type HeartwatchOptions, maxThreads, maxTimeoutMs } from '../options.js';
import { formatUdpAddress } from '../sender/udp-address.js';
import {
  type Command,
  optionErrorAsUsage,
  parseChoice,
  parseDuration,
  parseFlags,
  parseInteger,
  UsageError,
  untilSignal,
} from './args.js';
import { count, eventJson, eventText, statusLine, stormJson, stormText } from './format.js';

const spec = {
  port: { type: 'string' },
  host: { type: 'string' },
  timeout: { type: 'string' },
  'missed-beats': { type: 'string' },
  identity: { type: 'string' },
  receivers: { type: 'string' },
  workers: { type: 'string' },
  cpus: { type: 'string' },
  'max-hosts': { type: 'string' },
  engine: { type: 'string' },
  json: { type: 'boolean' },
} as const;

/** Library option -> CLI flag, to phrase option errors in the user's terms. */
const flagOf: Record<string, string> = {
  port: '--port',
  host: '--host',
  timeoutMs: '--timeout',
  missedBeats: '--missed-beats',
  identity: '--identity',
  receivers: '--receivers',
  workers: '--workers',
  cpus: '--cpus',
  maxHosts: '--max-hosts',
  engine: '--engine',
};

const help = `Usage: heartwatch serve [flags]

Runs a heartwatch server: listens for UDP heartbeats and prints one line per host event
(up, down, restart). Logs and warnings go to stderr; "listening on IP:PORT" is printed there
once every socket is bound. Ctrl-C (SIGINT) or SIGTERM closes it cleanly (exit 0).

Flags:
  --port N             UDP port, 0 for an ephemeral one                 (default 7700)
  --host IP            bind address; "::" is dual-stack IPv6 + IPv4      (default ::)
  --timeout D          declare a host down after D without a heartbeat   (default 5000)
  --missed-beats N     a host that announces its interval I is down after N*I
                       missed; others use --timeout; 0: always --timeout (default 3)
  --identity MODE      id: the host_id field; address: source ip:port;
                       ip: source IP (any datagram counts)               (default id)
  --receivers N        receiver threads                                  (default cores/2)
  --workers N          worker threads                                    (default cores/2)
  --cpus LIST          CPUs to pin threads to, e.g. 0,1; "none" to not pin (default all)
  --max-hosts N        most hosts tracked; more are refused and counted  (default 4194304)
  --engine E           auto, native or js; auto falls back to js with a warning
                                                                         (default auto)
  --json               one JSON object per event per line on stdout
  -h, --help           show this help

Durations: plain milliseconds or 500ms, 10s, 2m, 1h.

Output without --json: one line per event; on a terminal also a status line refreshed every
second (hosts up/down/tracked, packets per second, malformed, kernel and ring drops).

--json lines (exactly these keys, in this order; times are ISO 8601 UTC):
  {"event":"up","id":"42","address":"10.0.0.7:5000","time":"...","recovered":false}
  {"event":"down","id":"42","address":"10.0.0.7:5000","time":"...","reason":"timeout","lastSeen":"..."}
  {"event":"restart","id":"42","address":"10.0.0.7:5000","time":"...","incarnation":7,"previousIncarnation":3}
  {"event":"storm","phase":"start","time":"...","downs":600,"hosts":1000}
  {"event":"storm","phase":"end","time":"...","downs":1000,"hosts":1000}
"reason" is "timeout" or "left" (the host sent LEAVE). A down may end with "uncertain":true
(datagrams were lost around its deadline) and "storm":true (it came in a mass failure).

Exit codes: 0 closed by a signal, 1 runtime error (e.g. EADDRINUSE), 2 usage error.

Example:
  heartwatch serve --port 7700 --timeout 3s --json | jq .
`;

function serveOptions(values: ReturnType<typeof parseFlags<typeof spec>>): HeartwatchOptions {
  const options: HeartwatchOptions = {};
  if (values.port !== undefined)
    options.port = parseInteger('serve', '--port', values.port, 0, 65535);
  if (values.host !== undefined) {
    if (isIP(values.host) === 0) {
      throw new UsageError(
        `heartwatch serve: --host must be an IP address such as ::, 0.0.0.0 or 127.0.0.1, got "${values.host}"`,
      );
    }
    options.host = values.host;
  }
  if (values.timeout !== undefined) {
    options.timeoutMs = parseDuration('serve', '--timeout', values.timeout, 1, maxTimeoutMs);
  }
  if (values['missed-beats'] !== undefined) {
    options.missedBeats = parseInteger('serve', '--missed-beats', values['missed-beats'], 0, 1000);
  }
  if (values.identity !== undefined) {
    options.identity = parseChoice('serve', '--identity', values.identity, [
      'id',
      'address',
      'ip',
    ] as const);
  }
  if (values.receivers !== undefined) {
    options.receivers = parseInteger('serve', '--receivers', values.receivers, 1, maxThreads());
  }
  if (values.workers !== undefined) {
    options.workers = parseInteger('serve', '--workers', values.workers, 1, maxThreads());
  }
  if (values.cpus !== undefined) options.cpus = parseCpus(values.cpus);
  if (values['max-hosts'] !== undefined) {
    options.maxHosts = parseInteger('serve', '--max-hosts', values['max-hosts'], 1, 2 ** 31 - 1);
  }
  if (values.engine !== undefined) {
    options.engine = parseChoice('serve', '--engine', values.engine, [
      'auto',
      'native',
      'js',
    ] as const);
  }
  return options;
}

function parseCpus(text: string): number[] | null {
  if (text === 'none') return null;
  const cpus = availableParallelism();
  const list = text.split(',');
  const parsed = list.map((item) => (/^[0-9]+$/.test(item) ? Number(item) : Number.NaN));
  if (parsed.some((cpu) => !(cpu < cpus)) || new Set(parsed).size !== parsed.length) {
    throw new UsageError(
      `heartwatch serve: --cpus must be "none" or distinct CPU indices from 0 to ${cpus - 1} separated by commas, got "${text}"`,
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

  events(batch: HostEvent[]): void {
    const format = this.#json ? eventJson : eventText;
    let text = '';
    for (const event of batch) text += `${format(event)}\n`;
    this.#write(text);
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
    if (this.#live && this.#status !== undefined) process.stdout.write('\r\x1b[K');
    this.#status = undefined;
  }

  #write(text: string): void {
    if (this.#live) process.stdout.write(`\r\x1b[K${text}${this.#status?.() ?? ''}`);
    else if (text !== '') process.stdout.write(text);
  }
}

async function run(argv: string[]): Promise<number> {
  const values = parseFlags('serve', argv, spec);
  const options = serveOptions(values);
  let hw: Heartwatch;
  try {
    hw = new Heartwatch(options);
  } catch (err) {
    throw optionErrorAsUsage('serve', err, flagOf);
  }
  const printer = new EventPrinter(values.json === true);
  const stop = untilSignal();
  hw.on('events', (batch) => printer.events(batch));
  hw.on('storm', (storm) =>
    printer.line(values.json === true ? stormJson(storm) : stormText(storm)),
  );
  hw.on('warning', (warning) => {
    printer.finish();
    process.stderr.write(`heartwatch serve: warning: ${warning.message}\n`);
  });
  hw.on('error', (err) => {
    printer.finish();
    process.stderr.write(`heartwatch serve: error: ${err.message}\n`);
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
  process.stderr.write(
    `listening on ${formatUdpAddress(info)} (engine ${stats.engine}, ${stats.receivers.length} receiver(s), ${stats.workers.length} worker(s), SO_RCVBUF ${count(info.recvBufferBytes)} bytes)\n`,
  );

  let timer: NodeJS.Timeout | undefined;
  if (printer.live) {
    let last = { at: performance.now(), received: stats.received };
    let perSecond = 0;
    printer.status(() => statusLine(hw.stats(), perSecond));
    timer = setInterval(() => {
      const now = { at: performance.now(), received: hw.stats().received };
      perSecond = ((now.received - last.received) * 1000) / Math.max(1, now.at - last.at);
      last = now;
      printer.status(() => statusLine(hw.stats(), perSecond));
    }, 1000);
  }

  const signal = await stop;
  if (timer !== undefined) clearInterval(timer);
  printer.finish();
  process.stderr.write(`heartwatch serve: ${signal}, closing\n`);
  await hw.close();
  const final = hw.stats();
  process.stderr.write(
    `heartwatch serve: closed after ${count(final.received)} datagrams and ${count(final.eventsDelivered)} events\n`,
  );
  return 0;
}

export const serve: Command = {
  name: 'serve',
  summary: 'run a server and print host up/down/restart events (--json for JSON lines)',
  help,
  run,
};
