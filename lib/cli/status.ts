import { request } from 'node:http';
import type { HostSnapshot } from '../events.js';
import type { HttpAddress, HttpSummary } from '../http/server.js';
import { type Command, parseChoice, parseFlags, UsageError } from './args.js';
import { count, isoTime } from './format.js';
import { parseHttpAddress } from './serve-config.js';

const spec = {
  http: { type: 'string' },
  hosts: { type: 'boolean' },
  state: { type: 'string' },
} as const;

/** Where `status` looks when neither --http nor HEARTWATCH_HTTP says. */
const defaultAddress = '127.0.0.1:7701';

const help = `Usage: heartwatch status [--http HOST:PORT] [--hosts [--state up|down]]

Prints a running server's summary, read from its HTTP API (start it with serve --http).

Flags:
  --http [HOST:]PORT   the server's --http address; default HEARTWATCH_HTTP, else ${defaultAddress}
  --hosts              also list its hosts, one line each: id, state, address, last heartbeat
  --state S            with --hosts: only hosts that are up, or down
  -h, --help           show this help

Exit codes: 0 the server answered and is healthy, 1 unreachable or unhealthy (503), 2 usage error.
`;

function formatHttpAddress({ host, port }: HttpAddress): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * GET `path` as JSON with node:http (not fetch, which refuses ports on the browsers' blocked
 * list, such as 6000 or 10080); bounded by a 10 s timeout.
 */
function getJson<T>(address: HttpAddress, path: string): Promise<{ status: number; body: T }> {
  const where = `http://${formatHttpAddress(address)}`;
  return new Promise((resolve, reject) => {
    const req = request(
      { host: address.host, port: address.port, path, timeout: 10_000 },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () => {
          try {
            resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as T });
          } catch {
            reject(new Error(`${where}${path} did not answer JSON; is it a heartwatch server?`));
          }
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('no answer within 10 s')));
    req.on('error', (err: NodeJS.ErrnoException) => {
      reject(
        new Error(
          `cannot reach ${where} (${err.code ?? err.message}); is serve running with --http?`,
        ),
      );
    });
    req.end();
  });
}

function summaryText(where: string, health: string, s: HttpSummary): string {
  const st = s.stats;
  return [
    `heartwatch at ${where}: ${health} (engine ${st.engine})`,
    `hosts: ${count(st.hostsUp)} up, ${count(st.hostsDown)} down, ${count(st.trackedHosts)} tracked`,
    `datagrams: ${count(st.received)} received, ${count(st.malformed)} malformed, ${count(st.authUnsupported)} auth unsupported; drops: socket ${count(st.kernelDrops)}, ring ${count(st.ringDrops)}; refused ${count(st.refused)}`,
    `events: ${count(st.eventsDelivered)} delivered, ${count(st.eventsPending)} pending; transitions: up ${count(s.transitions.up)}, down ${count(s.transitions.down)}, restart ${count(s.transitions.restart)}`,
  ].join('\n');
}

/** Prints every host, page by page, so a million hosts never sit in memory at once. */
async function printHosts(base: HttpAddress, state: string | undefined): Promise<void> {
  let next: string | null = null;
  do {
    const query = new URLSearchParams({ limit: '10000' });
    if (state !== undefined) query.set('state', state);
    if (next !== null) query.set('cursor', next);
    const page = await getJson<{ hosts: HostSnapshot[]; next: string | null; error?: string }>(
      base,
      `/hosts?${query}`,
    );
    if (page.status !== 200) throw new Error(`/hosts answered ${page.status}: ${page.body.error}`);
    let text = '';
    for (const h of page.body.hosts) {
      text += `${h.id}  ${h.state.padEnd(4)}  ${h.address}  ${isoTime(h.lastSeen)}\n`;
    }
    process.stdout.write(text);
    next = page.body.next;
  } while (next !== null);
}

async function run(argv: string[]): Promise<number> {
  const values = parseFlags('status', argv, spec);
  const text = values.http ?? process.env.HEARTWATCH_HTTP ?? defaultAddress;
  let address: HttpAddress;
  try {
    address = parseHttpAddress(text);
  } catch (err) {
    throw new UsageError((err as Error).message.replace('heartwatch serve', 'heartwatch status'));
  }
  if (values.state !== undefined && values.hosts !== true) {
    throw new UsageError('heartwatch status: --state needs --hosts');
  }
  const state =
    values.state === undefined
      ? undefined
      : parseChoice('status', '--state', values.state, ['up', 'down'] as const);
  const where = formatHttpAddress(address);
  const health = await getJson<{ status: string; reason?: string }>(address, '/healthz');
  const summary = await getJson<HttpSummary>(address, '/stats');
  const healthy = health.status === 200;
  process.stdout.write(
    `${summaryText(where, healthy ? 'healthy' : `unhealthy: ${health.body.reason}`, summary.body)}\n`,
  );
  if (values.hosts === true) await printHosts(address, state);
  return healthy ? 0 : 1;
}

export const status: Command = {
  name: 'status',
  summary: "print a running server's summary and, with --hosts, its hosts (over serve --http)",
  help,
  run,
};
