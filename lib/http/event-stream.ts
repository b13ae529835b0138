import type { IncomingMessage, ServerResponse } from 'node:http';
import { eventJson, stormJson } from '../cli/format.js';
import type { HostEvent, StormEvent } from '../events.js';
import type { Heartwatch } from '../heartwatch.js';

/** Options of {@link EventStream}. */
export interface EventStreamOptions {
  /** Recent events kept for clients that reconnect with `Last-Event-ID`. Default 10 000. */
  replay?: number | undefined;
  /** Bytes queued for one client at most; past that it is cut off at once. Default 64 MiB. */
  maxBufferedBytes?: number | undefined;
  /** A client with bytes queued that takes none of them for this long is cut off. Default 5 s. */
  stallMs?: number | undefined;
  /** Streams open at once at most; more get 503. Default 256. */
  maxClients?: number | undefined;
  /** Interval of the keep-alive comment that keeps proxies from closing an idle stream. Default 15 s. */
  keepAliveMs?: number | undefined;
}

/** One SSE frame: the event's id, its type, and the object `serve --json` prints for it. */
function frame(id: number, event: HostEvent): string {
  return `id: ${id}\nevent: ${event.type}\ndata: ${eventJson(event)}\n\n`;
}

/**
 * `GET /events`: Server-Sent Events, one per host event: `id: <n>`, `event: <up|down|restart>`,
 * `data:` the object `serve --json` prints for it; a mass failure's start and end come as
 * `event: storm` frames without an id (sent live, never replayed). The last `replay` frames are kept, so a client
 * that reconnects with `Last-Event-ID` (as EventSource does by itself) gets what it missed; when
 * that is no longer kept it gets one `event: gap` frame saying how many it missed. A client that
 * stops reading (bytes queued for it, none taken for `stallMs`) is disconnected, and so is one
 * with more than `maxBufferedBytes` queued, so memory stays bounded by `maxClients` times that;
 * each disconnect is counted. A reader that is slower than a burst but keeps reading is not cut.
 *
 * Runs on: the JS thread.
 */
export class EventStream {
  /** Each open stream, with the socket's `bytesWritten` when last seen making progress. */
  readonly #clients = new Map<ServerResponse, { written: number; since: number }>();
  /**
   * The last `replay` events, unformatted: formatting costs a JSON.stringify each, paid only when
   * a client is there to receive it or asks for a replay. Event n lives at `#recent[(n - 1) % replay]`.
   */
  readonly #recent: HostEvent[];
  /** Id of the newest event. */
  #lastId = 0;
  #slowClientsCut = 0;
  readonly #replay: number;
  readonly #maxBuffered: number;
  readonly #stallMs: number;
  readonly #maxClients: number;
  readonly #keepAlive: NodeJS.Timeout;
  readonly #watchdog: NodeJS.Timeout;
  readonly #detach: () => void;

  constructor(hw: Heartwatch, options: EventStreamOptions = {}) {
    this.#replay = options.replay ?? 10_000;
    this.#maxBuffered = options.maxBufferedBytes ?? 64 * 1024 * 1024;
    this.#stallMs = options.stallMs ?? 5000;
    this.#maxClients = options.maxClients ?? 256;
    this.#recent = new Array<HostEvent>(this.#replay);
    const listener = (batch: HostEvent[]): void => this.#publish(batch);
    // A storm frame has no id and is not kept for replay: it is news, not a host's state.
    const storm = (event: StormEvent): void =>
      this.#send(`event: storm\ndata: ${stormJson(event)}\n\n`);
    hw.on('events', listener);
    hw.on('storm', storm);
    this.#detach = () => {
      hw.off('events', listener);
      hw.off('storm', storm);
    };
    this.#keepAlive = setInterval(() => this.#send(':\n\n'), options.keepAliveMs ?? 15_000);
    this.#keepAlive.unref();
    this.#watchdog = setInterval(() => this.#cutStalled(), Math.max(50, this.#stallMs / 4));
    this.#watchdog.unref();
  }

  /** Clients connected now. */
  get clients(): number {
    return this.#clients.size;
  }

  /** Clients disconnected so far because they fell `maxBufferedBytes` behind. */
  get slowClientsCut(): number {
    return this.#slowClientsCut;
  }

  /**
   * Takes over `res` for the stream; replays from the `Last-Event-ID` header when given. Returns
   * false, having answered 503, when `maxClients` streams are open already.
   */
  open(req: IncomingMessage, res: ServerResponse): boolean {
    if (this.#clients.size >= this.#maxClients) {
      res.writeHead(503, { 'content-type': 'application/json; charset=utf-8', 'retry-after': '5' });
      res.end(JSON.stringify({ error: `${this.#maxClients} event streams are open already` }));
      return false;
    }
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write('retry: 1000\n\n');
    const last = req.headers['last-event-id'];
    if (typeof last === 'string' && /^[0-9]{1,15}$/.test(last))
      res.write(this.#since(Number(last)));
    this.#clients.set(res, { written: res.socket?.bytesWritten ?? 0, since: Date.now() });
    res.on('close', () => this.#clients.delete(res));
    return true;
  }

  /** Ends every stream and stops listening. */
  close(): void {
    clearInterval(this.#keepAlive);
    clearInterval(this.#watchdog);
    this.#detach();
    for (const res of this.#clients.keys()) res.end();
    this.#clients.clear();
  }

  /** Frames after `lastId` still kept, preceded by a `gap` frame if some are not. */
  #since(lastId: number): string {
    if (lastId >= this.#lastId) return '';
    const oldest = Math.max(1, this.#lastId - this.#replay + 1);
    let text = '';
    if (lastId + 1 < oldest) {
      const gap = JSON.stringify({ event: 'gap', missed: oldest - lastId - 1 });
      text += `event: gap\ndata: ${gap}\n\n`;
    }
    for (let id = Math.max(lastId + 1, oldest); id <= this.#lastId; id++) {
      text += frame(id, this.#recent[(id - 1) % this.#replay] as HostEvent);
    }
    return text;
  }

  #publish(batch: readonly HostEvent[]): void {
    const listening = this.#clients.size > 0;
    let text = '';
    for (const event of batch) {
      this.#lastId += 1;
      this.#recent[(this.#lastId - 1) % this.#replay] = event;
      if (listening) text += frame(this.#lastId, event);
    }
    if (text !== '') this.#send(text);
  }

  #send(text: string): void {
    for (const res of this.#clients.keys()) {
      if (res.writableLength + text.length > this.#maxBuffered) this.#cut(res);
      else res.write(text);
    }
  }

  /** Cuts each client that has bytes queued and took none of them for `stallMs`. */
  #cutStalled(): void {
    const now = Date.now();
    for (const [res, seen] of this.#clients) {
      const written = res.socket?.bytesWritten ?? 0;
      if (res.writableLength === 0 || written !== seen.written) {
        seen.written = written;
        seen.since = now;
      } else if (now - seen.since >= this.#stallMs) {
        this.#cut(res);
      }
    }
  }

  #cut(res: ServerResponse): void {
    this.#slowClientsCut += 1;
    this.#clients.delete(res);
    res.destroy();
  }
}
