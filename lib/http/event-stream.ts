import type { IncomingMessage, ServerResponse } from 'node:http';
import { eventJson } from '../cli/format.js';
import type { HostEvent } from '../events.js';
import type { Heartwatch } from '../heartwatch.js';

/** Options of {@link EventStream}. */
export interface EventStreamOptions {
  /** Recent events kept for clients that reconnect with `Last-Event-ID`. Default 10 000. */
  replay?: number | undefined;
  /** Bytes a client may leave unread before it is cut off (it may reconnect). Default 4 MiB. */
  maxBufferedBytes?: number | undefined;
  /** Interval of the keep-alive comment that keeps proxies from closing an idle stream. Default 15 s. */
  keepAliveMs?: number | undefined;
}

/**
 * `GET /events`: Server-Sent Events, one per host event: `id: <n>`, `event: <up|down|restart>`,
 * `data:` the object `serve --json` prints for it. The last `replay` frames are kept, so a client
 * that reconnects with `Last-Event-ID` (as EventSource does by itself) gets what it missed; when
 * that is no longer kept it gets one `event: gap` frame saying how many it missed. A client that
 * reads slower than events come is disconnected once `maxBufferedBytes` are queued for it, so
 * memory stays bounded; the disconnect is counted.
 *
 * Runs on: the JS thread.
 */
export class EventStream {
  readonly #clients = new Set<ServerResponse>();
  readonly #frames: string[];
  /** Id of the newest frame; frame n lives at `#frames[(n - 1) % replay]`. */
  #lastId = 0;
  #slowClientsCut = 0;
  readonly #replay: number;
  readonly #maxBuffered: number;
  readonly #keepAlive: NodeJS.Timeout;
  readonly #detach: () => void;

  constructor(hw: Heartwatch, options: EventStreamOptions = {}) {
    this.#replay = options.replay ?? 10_000;
    this.#maxBuffered = options.maxBufferedBytes ?? 4 * 1024 * 1024;
    this.#frames = new Array<string>(this.#replay);
    const listener = (batch: HostEvent[]): void => this.#publish(batch);
    hw.on('events', listener);
    this.#detach = () => hw.off('events', listener);
    this.#keepAlive = setInterval(() => this.#send(':\n\n'), options.keepAliveMs ?? 15_000);
    this.#keepAlive.unref();
  }

  /** Clients connected now. */
  get clients(): number {
    return this.#clients.size;
  }

  /** Clients disconnected so far because they fell `maxBufferedBytes` behind. */
  get slowClientsCut(): number {
    return this.#slowClientsCut;
  }

  /** Takes over `res` for the stream; replays from the `Last-Event-ID` header when given. */
  open(req: IncomingMessage, res: ServerResponse): void {
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
    this.#clients.add(res);
    res.on('close', () => this.#clients.delete(res));
  }

  /** Ends every stream and stops listening. */
  close(): void {
    clearInterval(this.#keepAlive);
    this.#detach();
    for (const res of this.#clients) res.end();
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
      text += this.#frames[(id - 1) % this.#replay];
    }
    return text;
  }

  #publish(batch: readonly HostEvent[]): void {
    // With nobody listening only the events that fit the replay window are formatted.
    const first = this.#clients.size > 0 ? 0 : Math.max(0, batch.length - this.#replay);
    this.#lastId += first;
    let text = '';
    for (let i = first; i < batch.length; i++) {
      const event = batch[i] as HostEvent;
      this.#lastId += 1;
      const frame = `id: ${this.#lastId}\nevent: ${event.type}\ndata: ${eventJson(event)}\n\n`;
      this.#frames[(this.#lastId - 1) % this.#replay] = frame;
      if (this.#clients.size > 0) text += frame;
    }
    if (text !== '') this.#send(text);
  }

  #send(text: string): void {
    for (const res of this.#clients) {
      if (res.writableLength > this.#maxBuffered) {
        this.#slowClientsCut += 1;
        this.#clients.delete(res);
        res.destroy();
        continue;
      }
      res.write(text);
    }
  }
}
