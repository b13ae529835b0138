import { HeartbeatSender, type HeartbeatSenderOptions } from '../sender/heartbeat-sender.js';
import { parseUdpAddress } from '../sender/udp-address.js';
import {
  type Command,
  formatDuration,
  optionErrorAsUsage,
  parseChoice,
  parseDuration,
  parseFlags,
  parseNumber,
  UsageError,
  untilSignal,
} from './args.js';
import { readKeyFile } from './key-file.js';

const spec = {
  to: { type: 'string' },
  id: { type: 'string' },
  name: { type: 'string' },
  interval: { type: 'string' },
  jitter: { type: 'string' },
  payload: { type: 'string' },
  'no-announce': { type: 'boolean' },
  duration: { type: 'string' },
  'auth-key-file': { type: 'string' },
  transport: { type: 'string' },
} as const;

const flagOf: Record<string, string> = {
  server: '--to',
  hostId: '--id',
  name: '--name',
  intervalMs: '--interval',
  jitter: '--jitter',
  payload: '--payload',
  transport: '--transport',
};

const help = `Usage: heartwatch send --to HOST:PORT (--id N | --name NAME) [flags]

Sends wire-protocol v1 heartbeats for one host until Ctrl-C (SIGINT) or SIGTERM, then sends
a LEAVE datagram so the server marks the host down at once (reason "left"). Each run picks a
new random incarnation, so restarting this command shows up as a restart.

Flags:
  --to HOST:PORT     server address, e.g. 127.0.0.1:7700 or [::1]:7700 (required)
  --id N             host id, a decimal integer from 1 to 2^64-1 (or 0x hex)
  --name NAME        derive the host id from a name: the first 8 bytes (big-endian) of
                     SHA-256 of the UTF-8 name, 1 if those are all zero
  --interval D       heartbeat period                                (default 1000)
  --jitter F         each period is drawn from interval*(1-F)..interval*(1+F),
                     so hosts started together do not beat in lock-step (default 0.1)
  --payload TEXT     opaque status bytes (UTF-8) carried in each heartbeat
  --no-announce      send interval 0 ("unknown"): the server uses its own --timeout
  --duration D       stop (and send LEAVE) after D instead of waiting for a signal
  --auth-key-file F  sign every heartbeat with the first key in F (one hex key per line,
                     mode 0600); the incarnation is then the start time in Unix seconds;
                     UDP only
  --transport T      udp, tcp (to a server run with --tcp-port) or auto: UDP up to
                     1232 bytes, TCP above                           (default udp)
  -h, --help         show this help

Give exactly one of --id and --name. Durations: plain milliseconds or 500ms, 10s, 2m, 1h.
Exit codes: 0 stopped cleanly, 1 runtime error, 2 usage error.

Example:
  heartwatch send --to 127.0.0.1:7700 --name web-1 --interval 500ms
`;

const maxHostId = (1n << 64n) - 1n;

function parseHostId(text: string): bigint {
  const valid = /^[0-9]+$/.test(text) || /^0x[0-9a-fA-F]+$/.test(text);
  const id = valid ? BigInt(text) : 0n;
  if (id < 1n || id > maxHostId) {
    throw new UsageError(
      `heartwatch send: --id must be an integer from 1 to ${maxHostId} (decimal or 0x hex), got "${text}"`,
    );
  }
  return id;
}

async function run(argv: string[]): Promise<number> {
  const values = parseFlags('send', argv, spec);
  if (values.to === undefined) {
    throw new UsageError('heartwatch send: --to is required, e.g. --to 127.0.0.1:7700');
  }
  const address = parseUdpAddress(values.to, undefined);
  if ('error' in address) {
    throw new UsageError(
      `heartwatch send: --to must be HOST:PORT such as 127.0.0.1:7700 or [::1]:7700, got "${values.to}" (${address.error})`,
    );
  }
  if ((values.id === undefined) === (values.name === undefined)) {
    throw new UsageError('heartwatch send: give exactly one of --id N and --name NAME');
  }
  const transport =
    values.transport === undefined
      ? 'udp'
      : parseChoice('send', '--transport', values.transport, ['udp', 'tcp', 'auto'] as const);
  const options: HeartbeatSenderOptions = {
    server: values.to.startsWith('udp://') ? values.to : `udp://${values.to}`,
    transport,
  };
  if (values.id !== undefined) options.hostId = parseHostId(values.id);
  if (values.name !== undefined) options.name = values.name;
  if (values.interval !== undefined) {
    options.intervalMs = parseDuration('send', '--interval', values.interval, 1, 86_400_000);
  }
  if (values.jitter !== undefined) {
    options.jitter = parseNumber('send', '--jitter', values.jitter, 0, 0.9);
  }
  if (values.payload !== undefined) options.payload = Buffer.from(values.payload, 'utf8');
  if (values['no-announce'] === true) options.announceInterval = false;
  if (values['auth-key-file'] !== undefined) {
    options.key = readKeyFile('send', values['auth-key-file']).keys[0] as Buffer;
  }
  const duration =
    values.duration === undefined
      ? undefined
      : parseDuration('send', '--duration', values.duration, 1, 2 ** 31 - 1);

  let sender: HeartbeatSender;
  try {
    sender = new HeartbeatSender(options);
  } catch (err) {
    throw optionErrorAsUsage('send', err, flagOf);
  }
  // A network hiccup (a route down for a moment) must not end a heartbeat agent: say it, go on.
  sender.on('error', (err) => process.stderr.write(`heartwatch send: ${err.message}\n`));
  const stop = untilSignal();
  await sender.start();
  process.stderr.write(
    `sending heartbeats to ${sender.server} as host ${sender.hostId} (incarnation ${sender.incarnation}${options.key === undefined ? '' : ', signed'}) every ${formatDuration(sender.intervalMs)} ±${Math.round(sender.jitter * 100)}%${duration === undefined ? '; Ctrl-C sends LEAVE and stops' : ` for ${formatDuration(duration)}`}\n`,
  );

  let timer: NodeJS.Timeout | undefined;
  const finished = new Promise<string>((resolve) => {
    if (duration !== undefined) timer = setTimeout(() => resolve('duration reached'), duration);
  });
  const outcome = await Promise.race([stop, finished]);
  if (timer !== undefined) clearTimeout(timer);
  await sender.close();
  process.stderr.write(
    `heartwatch send: ${outcome}; sent ${sender.sent} datagrams, the last a LEAVE (seq ${sender.seq})\n`,
  );
  return 0;
}

export const send: Command = {
  name: 'send',
  summary: 'send heartbeats for one host until interrupted (then LEAVE)',
  help,
  run,
};
