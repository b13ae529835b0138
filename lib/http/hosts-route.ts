import type { ServerResponse } from 'node:http';
import type { HostSnapshot } from '../events.js';
import type { Heartwatch } from '../heartwatch.js';
import { HttpError, hostIdParam, intParam, queryParams } from './params.js';

/** Most hosts per `/hosts` page. */
export const maxPageLimit = 100_000;

/** How long a client may leave a page unread before the stream is cut (it holds a snapshot). */
const stalledWriteMs = 30_000;

/**
 * One host as `/hosts` writes it: the fields of `hosts()`, in a fixed order, and `status` (base64
 * of its bytes, as `serve --json` prints it) when the host has one.
 */
export function hostJson(host: HostSnapshot): string {
  return JSON.stringify({
    id: host.id,
    address: host.address,
    state: host.state,
    lastSeen: host.lastSeen,
    incarnation: host.incarnation,
    timeoutMs: host.timeoutMs,
    ...(host.status === undefined ? {} : { status: host.status.toString('base64') }),
  });
}

interface HostsQuery {
  state: 'up' | 'down' | undefined;
  limit: number | undefined;
  offset: number;
}

/**
 * The cursor is opaque to clients: the state filter and how many matching hosts came before,
 * base64url. It is an offset into the engine's iteration order, so hosts that join or are
 * forgotten between two pages can shift a page by that many (documented in docs/http.md).
 */
function encodeCursor(state: string | undefined, offset: number): string {
  return Buffer.from(`${state ?? 'all'}:${offset}`).toString('base64url');
}

function parseHostsQuery(url: URL): HostsQuery {
  const params = queryParams(url, ['state', 'limit', 'cursor']);
  const stateText = params.get('state');
  if (stateText !== undefined && stateText !== 'up' && stateText !== 'down') {
    throw new HttpError(400, `query parameter "state" must be up or down, got "${stateText}"`);
  }
  const state = stateText;
  const limitText = params.get('limit');
  const limit = limitText === undefined ? undefined : intParam('limit', limitText, 1, maxPageLimit);
  let offset = 0;
  const cursor = params.get('cursor');
  if (cursor !== undefined) {
    const match = /^(all|up|down):([0-9]{1,15})$/.exec(
      Buffer.from(cursor, 'base64url').toString('latin1'),
    );
    if (match === null) {
      throw new HttpError(400, 'query parameter "cursor" is not a cursor this server gave out');
    }
    if (match[1] !== (state ?? 'all')) {
      throw new HttpError(
        400,
        `query parameter "cursor" was given out for state=${match[1]}; pass the same state`,
      );
    }
    offset = Number(match[2]);
  }
  return { state, limit, offset };
}

function drained(res: ServerResponse): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      res.off('drain', onDrain);
      res.off('close', onClose);
      resolve(ok);
    };
    const onDrain = (): void => done(true);
    const onClose = (): void => done(false);
    const timer = setTimeout(() => done(false), stalledWriteMs);
    res.once('drain', onDrain);
    res.once('close', onClose);
  });
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Hosts formatted per event-loop turn: a few milliseconds of JSON at most between yields. */
const hostsPerTurn = 1024;

/** Position of a `/hosts` walk: matching hosts skipped (cursor offset) and written so far. */
interface Walk {
  state: 'up' | 'down' | undefined;
  limit: number | undefined;
  offset: number;
  skipped: number;
  written: number;
  more: boolean;
}

/** The JSON of `hosts[from, to)` that the walk takes, advancing it. */
function pageSlice(walk: Walk, hosts: readonly HostSnapshot[], from: number, to: number): string {
  let chunk = '';
  for (let i = from; i < to; i++) {
    const host = hosts[i] as HostSnapshot;
    if (walk.state !== undefined && host.state !== walk.state) continue;
    if (walk.skipped < walk.offset) {
      walk.skipped += 1;
      continue;
    }
    if (walk.written === walk.limit) {
      walk.more = true;
      break;
    }
    chunk += walk.written === 0 ? hostJson(host) : `,${hostJson(host)}`;
    walk.written += 1;
  }
  return chunk;
}

/**
 * `GET /hosts?state=&limit=&cursor=`: `{"hosts":[...],"next":"<cursor>"|null}`, written slice by
 * slice as the engine hands the hosts over, waiting for the socket to drain and yielding to the
 * event loop after each slice: a million hosts never become one string, nor one long task.
 */
export async function listHosts(hw: Heartwatch, url: URL, res: ServerResponse): Promise<void> {
  const walk: Walk = { ...parseHostsQuery(url), skipped: 0, written: 0, more: false };
  res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
  res.write('{"hosts":[');
  for await (const batch of hw.hostsIterator({ statuses: true })) {
    for (let from = 0; from < batch.length && !walk.more; from += hostsPerTurn) {
      const chunk = pageSlice(walk, batch, from, Math.min(batch.length, from + hostsPerTurn));
      if (chunk !== '' && !res.write(chunk) && !(await drained(res))) {
        // Gone, or stalled past the limit: a cut connection, never a truncated document.
        res.destroy();
        return;
      }
      if (res.destroyed) return;
      await nextTurn();
    }
    if (walk.more) break;
  }
  const next = walk.more
    ? JSON.stringify(encodeCursor(walk.state, walk.offset + walk.written))
    : 'null';
  res.end(`],"next":${next}}`);
}

/** `GET /hosts/<id>`: the host as `/hosts` lists it, or 404; asks only its owner (`host(id)`). */
export async function oneHost(hw: Heartwatch, idText: string, res: ServerResponse): Promise<void> {
  const id = hostIdParam(idText);
  const host = await hw.host(id);
  if (host === undefined) throw new HttpError(404, `host ${id} is not tracked`);
  res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
  res.end(hostJson(host));
}
