import { isIP } from 'node:net';

/** A parsed UDP destination. `host` is an IP literal (no brackets) or a DNS name. */
export interface UdpAddress {
  host: string;
  port: number;
  /** 4 or 6 for IP literals, 0 for names (resolved when the socket is opened). */
  family: 0 | 4 | 6;
}

const namePattern =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

/**
 * Parses `udp://host:port`, `host:port`, `[v6]:port` (and the same without a port, which then
 * defaults to `defaultPort`). Returns a reason string instead of throwing, so each caller can
 * phrase the error for its own option or flag.
 */
export function parseUdpAddress(
  text: string,
  defaultPort: number | undefined,
): UdpAddress | { error: string } {
  const rest = text.startsWith('udp://') ? text.slice('udp://'.length) : text;
  let host: string;
  let portText: string | undefined;
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close < 0) return { error: 'an IPv6 address must be closed with "]"' };
    host = rest.slice(1, close);
    const after = rest.slice(close + 1);
    if (after !== '' && !after.startsWith(':')) return { error: 'expected ":port" after "]"' };
    portText = after === '' ? undefined : after.slice(1);
    if (isIP(host) !== 6) return { error: `"${host}" is not an IPv6 address` };
  } else {
    const colons = rest.split(':').length - 1;
    if (colons > 1)
      return { error: 'an IPv6 address must be written in brackets, e.g. [::1]:7700' };
    const colon = rest.indexOf(':');
    host = colon < 0 ? rest : rest.slice(0, colon);
    portText = colon < 0 ? undefined : rest.slice(colon + 1);
    if (isIP(host) === 0 && !namePattern.test(host)) {
      return { error: `"${host}" is neither an IP address nor a host name` };
    }
  }
  let port: number;
  if (portText === undefined) {
    if (defaultPort === undefined) return { error: 'the port is missing' };
    port = defaultPort;
  } else {
    if (!/^[0-9]{1,5}$/.test(portText)) return { error: `"${portText}" is not a port number` };
    port = Number(portText);
  }
  if (port < 1 || port > 65535) return { error: `port ${port} is outside 1..65535` };
  const family = isIP(host);
  return { host, port, family: family === 4 || family === 6 ? family : 0 };
}

/** `ip:port`, with IPv6 in brackets, the way heartwatch prints addresses. */
export function formatUdpAddress(address: { host: string; port: number }): string {
  return address.host.includes(':')
    ? `[${address.host}]:${address.port}`
    : `${address.host}:${address.port}`;
}
