import { isIP } from 'node:net';
import { HeartwatchError } from './errors.js';
import { integer, invalid, maxTimeoutMs } from './options.js';

/**
 * The TCP transport (`tcp` in the options; off unless given). Heartbeats too big for a UDP
 * datagram, or from networks that drop UDP, arrive as v1 frames back to back on TCP connections
 * (docs/protocol.md, "Over TCP"). Every field is optional.
 */
export interface TcpOptions {
  /** TCP port, 0 to 65535 (0 picks a free one; read it from `listen()`). Default 7700: TCP and UDP ports are separate, so one number serves both. */
  port?: number | undefined;
  /** Address to bind, an IP literal. Default: the top-level `host`. */
  host?: string | undefined;
  /** Reactor threads, each running one epoll loop over its share of the connections (native engine); 1 to the `receivers` maximum. Default 1. */
  reactors?: number | undefined;
  /** Open connections at most, 1 to 16 777 216; further ones are closed at once (RST) and counted. Default 65 536. */
  maxConnections?: number | undefined;
  /** Open connections per source IP at most; 0 (default) sets no cap, since a NAT can put thousands of hosts behind one address. */
  maxConnectionsPerIp?: number | undefined;
  /** A connection must deliver its first complete frame within this, 1 to 16 777 214 ms. Default 10 000 (as ZooKeeper's). */
  handshakeTimeoutMs?: number | undefined;
  /** A connection with no complete frame for this long is closed, 1 to 16 777 214 ms. Default 60 000; keep it above the senders' interval. */
  idleTimeoutMs?: number | undefined;
  /** A frame must arrive whole within this of its first byte (a slowloris bound), 1 to 16 777 214 ms. Default 10 000. */
  frameTimeoutMs?: number | undefined;
  /** listen(2) backlog, 1 to 65 535; the kernel caps it at net.core.somaxconn. Default 4096, so a reconnect storm waits in the kernel instead of being refused. */
  backlog?: number | undefined;
  /** TCP_DEFER_ACCEPT seconds, 0 to 3600: the kernel hands over a connection only once it has data, so silent connections cost no descriptor. 0 (default) is off: the handshake timeout then reaps them, and they show in the counters. */
  deferAcceptS?: number | undefined;
  /** SO_RCVBUF for connections, 0 or 4096 to 2^31-1 bytes. 0 (default) keeps the kernel's autotuning, right for small heartbeats; for big frames on long paths size it to bandwidth x round-trip time (1 Gbit/s x 10 ms = 1.25 MB). */
  recvBufferBytes?: number | undefined;
  /** SO_KEEPALIVE with TCP_KEEPIDLE seconds, 0 to 32 767; 0 turns keepalive off. Default 30: a peer that vanished without a FIN is found in 30 + 10 x 3 = 60 s even when idleTimeoutMs is longer. */
  keepAliveIdleS?: number | undefined;
  /** TCP_KEEPINTVL seconds between probes, 1 to 32 767. Default 10. */
  keepAliveIntervalS?: number | undefined;
  /** TCP_KEEPCNT probes before the kernel drops the connection, 1 to 127. Default 3. */
  keepAliveCount?: number | undefined;
  /**
   * A connection that closes without a LEAVE (FIN, RST, error, or closed here by a timeout or a
   * protocol error) downs the host whose latest heartbeat it carried, at once, with reason
   * `disconnected`; with keys, only if that heartbeat was authenticated. Default false: liveness
   * is decided by heartbeats alone. See README "TCP transport".
   */
  closeMeansDown?: boolean | undefined;
}

export interface ResolvedTcpOptions {
  readonly port: number;
  readonly host: string;
  readonly reactors: number;
  readonly maxConnections: number;
  readonly maxConnectionsPerIp: number;
  readonly handshakeTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly frameTimeoutMs: number;
  readonly backlog: number;
  readonly deferAcceptS: number;
  readonly recvBufferBytes: number;
  readonly keepAliveIdleS: number;
  readonly keepAliveIntervalS: number;
  readonly keepAliveCount: number;
  readonly closeMeansDown: boolean;
}

const tcpKeys = [
  'port',
  'host',
  'reactors',
  'maxConnections',
  'maxConnectionsPerIp',
  'handshakeTimeoutMs',
  'idleTimeoutMs',
  'frameTimeoutMs',
  'backlog',
  'deferAcceptS',
  'recvBufferBytes',
  'keepAliveIdleS',
  'keepAliveIntervalS',
  'keepAliveCount',
  'closeMeansDown',
] as const satisfies readonly (keyof TcpOptions)[];

/**
 * Checks the `tcp` option; `null`/`undefined` leave TCP off. `host` is the top-level host,
 * `maxThreads` the thread cap the other thread options use.
 */
export function resolveTcpOptions(
  value: unknown,
  host: string,
  maxThreads: number,
): ResolvedTcpOptions | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw invalid('tcp', 'null or an object such as { port: 7700 }', value);
  }
  const given = value as Record<string, unknown>;
  for (const key of Object.keys(given)) {
    if (!(tcpKeys as readonly string[]).includes(key)) {
      throw new HeartwatchError(
        'ERR_HW_INVALID_OPTION',
        `Unknown option "tcp.${key}". Known tcp options: ${tcpKeys.join(', ')}`,
      );
    }
  }
  const field = (
    key: Exclude<(typeof tcpKeys)[number], 'closeMeansDown'>,
    min: number,
    max: number,
    fallback: number,
    unit = '',
  ): number =>
    given[key] === undefined ? fallback : integer(`tcp.${key}`, given[key], min, max, unit);
  let tcpHost = host;
  if (given.host !== undefined) {
    if (typeof given.host !== 'string' || isIP(given.host) === 0) {
      throw invalid('tcp.host', 'an IP address literal such as "::" or "127.0.0.1"', given.host);
    }
    tcpHost = given.host;
  }
  const recvBufferBytes = field(
    'recvBufferBytes',
    0,
    2 ** 31 - 1,
    0,
    ' (bytes; 0 keeps autotuning)',
  );
  if (recvBufferBytes > 0 && recvBufferBytes < 4096) {
    throw invalid(
      'tcp.recvBufferBytes',
      '0 or an integer from 4096 to 2147483647 (bytes)',
      recvBufferBytes,
    );
  }
  const closeMeansDown = given.closeMeansDown === undefined ? false : given.closeMeansDown;
  if (typeof closeMeansDown !== 'boolean') {
    throw invalid('tcp.closeMeansDown', 'a boolean', closeMeansDown);
  }
  const ms = ' (milliseconds)';
  return Object.freeze({
    port: field('port', 0, 65535, 7700, ' (0 picks a free port)'),
    host: tcpHost,
    reactors: field('reactors', 1, maxThreads, 1),
    maxConnections: field('maxConnections', 1, 2 ** 24, 65_536),
    maxConnectionsPerIp: field('maxConnectionsPerIp', 0, 2 ** 24, 0, ' (0 = no cap)'),
    handshakeTimeoutMs: field('handshakeTimeoutMs', 1, maxTimeoutMs, 10_000, ms),
    idleTimeoutMs: field('idleTimeoutMs', 1, maxTimeoutMs, 60_000, ms),
    frameTimeoutMs: field('frameTimeoutMs', 1, maxTimeoutMs, 10_000, ms),
    backlog: field('backlog', 1, 65_535, 4096),
    deferAcceptS: field('deferAcceptS', 0, 3600, 0, ' (seconds; 0 = off)'),
    recvBufferBytes,
    keepAliveIdleS: field('keepAliveIdleS', 0, 32_767, 30, ' (seconds; 0 = off)'),
    keepAliveIntervalS: field('keepAliveIntervalS', 1, 32_767, 10, ' (seconds)'),
    keepAliveCount: field('keepAliveCount', 1, 127, 3),
    closeMeansDown,
  });
}
