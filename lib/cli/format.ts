import type { HostEvent, StormEvent } from '../events.js';
import type { HeartwatchStats } from '../stats.js';

/** Milliseconds since the epoch as ISO 8601 UTC with milliseconds. */
export function isoTime(ms: number): string {
  return new Date(ms).toISOString();
}

/**
 * One event as the `--json` line contract says: fixed keys in a fixed order (JSON.stringify keeps
 * insertion order), times as ISO 8601. Scripts parse these lines, so this shape is API.
 */
export function eventJson(event: HostEvent): string {
  switch (event.type) {
    case 'up':
      return JSON.stringify({
        event: 'up',
        id: event.id,
        address: event.address,
        time: isoTime(event.at),
        recovered: event.recovered,
        ...(event.status === undefined ? {} : { status: event.status.toString('base64') }),
      });
    case 'update':
      return JSON.stringify({
        event: 'update',
        id: event.id,
        address: event.address,
        time: isoTime(event.at),
        status: event.status.toString('base64'),
      });
    case 'down':
      return JSON.stringify({
        event: 'down',
        id: event.id,
        address: event.address,
        time: isoTime(event.at),
        reason: event.reason,
        lastSeen: isoTime(event.lastSeen),
        timeoutMs: event.timeoutMs,
        ...(event.uncertain ? { uncertain: true } : {}),
        ...(event.storm ? { storm: true } : {}),
      });
    case 'restart':
      return JSON.stringify({
        event: 'restart',
        id: event.id,
        address: event.address,
        time: isoTime(event.at),
        incarnation: event.incarnation,
        previousIncarnation: event.previousIncarnation,
      });
  }
}

/**
 * The timeout rule in force, as `serve` prints it at start: `3 x announced interval, else 5000 ms`,
 * or `5000 ms` when announced intervals are ignored (`missedBeats` 0).
 */
export function timeoutRule(timeoutMs: number, missedBeats: number): string {
  return missedBeats === 0
    ? `${timeoutMs} ms`
    : `${missedBeats} x announced interval, else ${timeoutMs} ms`;
}

/** A storm line: `{"event":"storm","phase":"start"|"end","time":"<ISO 8601>",...counts}`. */
export function stormJson(storm: StormEvent): string {
  const { phase, at, ...counts } = storm;
  return JSON.stringify({ event: 'storm', phase, time: isoTime(at), ...counts });
}

/** A storm for people. */
export function stormText(storm: StormEvent): string {
  const held =
    storm.held === undefined ? '' : `, ${storm.held} held, ${storm.recovered} heard again`;
  return `${isoTime(storm.at)}  storm   ${storm.phase}: ${storm.downs} downs of ${storm.hosts} hosts${held}`;
}

/** One event for people: time, kind, id, address and what changed. */
export function eventText(event: HostEvent): string {
  const head = `${isoTime(event.at)}  ${event.type.padEnd(7)} ${event.id}  ${event.address}`;
  switch (event.type) {
    case 'up':
      return `${head}  ${event.recovered ? 'recovered' : 'new'}, incarnation ${event.incarnation}${
        event.status === undefined ? '' : `, status ${statusText(event.status)}`
      }`;
    case 'update':
      return `${head}  status ${statusText(event.status)}`;
    case 'down': {
      const earlier = `last heartbeat ${((event.at - event.lastSeen) / 1000).toFixed(3)} s earlier`;
      if (event.reason === 'left') return `${head}  left (it sent LEAVE)`;
      if (event.reason === 'disconnected') return `${head}  disconnected (TCP closed), ${earlier}`;
      return `${head}  timeout, ${earlier}`;
    }
    case 'restart':
      return `${head}  incarnation ${event.previousIncarnation} -> ${event.incarnation}`;
  }
}

/** Longest status shown in human output; `--json` carries every byte. */
const statusPreviewBytes = 80;

/** A status for people: its text when it is printable UTF-8 (cut), else its size and base64. */
export function statusText(status: Buffer): string {
  const text = status.toString('utf8');
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it rejects
  const printable = !text.includes('\uFFFD') && !/[\u0000-\u001f\u007f]/.test(text);
  if (!printable)
    return `${status.byteLength} bytes, base64 ${status.toString('base64').slice(0, statusPreviewBytes)}`;
  return text.length > statusPreviewBytes ? `${text.slice(0, statusPreviewBytes)}...` : text;
}

/** A count with thousands separators. */
export function count(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** A rate, compact: 950, 12.3k, 1.25M. */
export function rate(perSecond: number): string {
  if (perSecond >= 1e6) return `${(perSecond / 1e6).toFixed(2)}M`;
  if (perSecond >= 1e4) return `${(perSecond / 1e3).toFixed(1)}k`;
  return `${Math.round(perSecond)}`;
}

/** The live status line of `serve`: hosts, packet rate and every kind of loss. */
export function statusLine(stats: HeartwatchStats, packetsPerSecond: number): string {
  return [
    `up ${count(stats.hostsUp)}`,
    `down ${count(stats.hostsDown)}`,
    `tracked ${count(stats.trackedHosts)}`,
    `${rate(packetsPerSecond)} pkt/s`,
    `malformed ${count(stats.malformed)}`,
    `drops kernel ${count(stats.kernelDrops)} ring ${count(stats.ringDrops)}`,
    `refused ${count(stats.refused)}`,
    // Only when something was rejected, so an unauthenticated setup keeps its short line.
    ...(stats.authFailed + stats.replayed + stats.unauthenticated + stats.notAllowed > 0
      ? [
          `auth failed ${count(stats.authFailed)} replayed ${count(stats.replayed)} unsigned ${count(stats.unauthenticated)} not allowed ${count(stats.notAllowed)}`,
        ]
      : []),
  ].join(' | ');
}

/** Events of one batch printed one per line at most; a larger batch is summarized. */
export const burstLines = 10;

/**
 * A batch of events for people: one line each, or, for a burst (a mass failure delivers
 * thousands per batch), the first {@link burstLines} and one line counting the rest by kind, so
 * a million downs print a few thousand lines rather than a million. `--json` never summarizes.
 */
export function eventTextBatch(batch: readonly HostEvent[]): string {
  let text = '';
  const shown = batch.length > burstLines + 1 ? burstLines : batch.length;
  for (let i = 0; i < shown; i++) text += `${eventText(batch[i] as HostEvent)}\n`;
  if (shown === batch.length) return text;
  const rest = { up: 0, down: 0, left: 0, disconnected: 0, restart: 0, update: 0 };
  for (let i = shown; i < batch.length; i++) {
    const event = batch[i] as HostEvent;
    if (event.type === 'down' && event.reason !== 'timeout') rest[event.reason] += 1;
    else rest[event.type] += 1;
  }
  const kinds = [
    rest.down > 0 ? `${count(rest.down)} down (timeout)` : '',
    rest.left > 0 ? `${count(rest.left)} down (left)` : '',
    rest.disconnected > 0 ? `${count(rest.disconnected)} down (disconnected)` : '',
    rest.up > 0 ? `${count(rest.up)} up` : '',
    rest.restart > 0 ? `${count(rest.restart)} restart` : '',
    rest.update > 0 ? `${count(rest.update)} update` : '',
  ].filter((k) => k !== '');
  return `${text}... and ${count(batch.length - shown)} more in this burst: ${kinds.join(', ')}\n`;
}

/** `line` cut to fit a terminal `columns` wide (one column spare, so it never wraps). */
export function fitWidth(line: string, columns: number | undefined): string {
  if (columns === undefined || columns < 2 || line.length < columns) return line;
  return `${line.slice(0, columns - 2)}>`;
}
