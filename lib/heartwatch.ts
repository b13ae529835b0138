import { EventEmitter } from 'node:events';
import { checkAuthKeys } from './auth/keys.js';
import type { Engine, EngineSink, ListenInfo } from './engine/engine.js';
import { createJsEngine } from './engine/js-engine.js';
import { createNativeEngine, nativeEngineAvailable } from './engine/native-engine.js';
import { HeartwatchError } from './errors.js';
import type {
  DownEvent,
  HostEvent,
  HostSnapshot,
  HostsQuery,
  RestartEvent,
  StormEvent,
  UpdateEvent,
  UpEvent,
} from './events.js';
import { loadNative } from './native/binding.js';
import { type HeartwatchOptions, type ResolvedOptions, resolveOptions } from './options.js';
import type { HeartwatchStats } from './stats.js';
import { StormGuard } from './storm-guard.js';

/** The events a {@link Heartwatch} emits, with their listener arguments. */
export interface HeartwatchEvents {
  up: [event: UpEvent];
  down: [event: DownEvent];
  restart: [event: RestartEvent];
  /** An up host's status changed (README "Statuses"). */
  update: [event: UpdateEvent];
  /** Every event, as the batch the engine delivered; emitted before the per-type events. */
  events: [batch: HostEvent[]];
  /** A mass failure began or ended (option `storm`); `start` comes before the storm's downs. */
  storm: [event: StormEvent];
  /**
   * A listener threw (or its promise rejected), or a receiver thread stopped for good
   * (`ERR_HW_RECEIVER_FAILED`, expiry is then held: downs wait, see README "What a down means").
   * The engine keeps running.
   */
  error: [error: Error];
  /**
   * Something worth knowing that is not an error: code `ERR_HW_NATIVE_UNAVAILABLE` when
   * `engine: 'auto'` fell back to the pure-TS engine, `ERR_HW_ENGINE_WARNING` from an engine.
   */
  warning: [warning: HeartwatchError];
}

type Listener = (this: Heartwatch, arg: unknown) => unknown;

/**
 * An async iterator over events, fed by {@link Heartwatch.events}. It buffers without bound so
 * that no event is lost while the consumer is slow; it stops buffering (and frees its buffer)
 * when the loop ends or `return()` is called.
 */
class EventQueue implements AsyncIterableIterator<HostEvent> {
  #buffer: HostEvent[] = [];
  #head = 0;
  #waiting: ((result: IteratorResult<HostEvent>) => void) | undefined;
  #ended = false;
  readonly #detach: () => void;

  constructor(detach: () => void) {
    this.#detach = detach;
  }

  push(batch: readonly HostEvent[]): void {
    if (this.#ended) return;
    let i = 0;
    const waiting = this.#waiting;
    if (waiting !== undefined && batch.length > 0) {
      this.#waiting = undefined;
      waiting({ value: batch[0] as HostEvent, done: false });
      i = 1;
    }
    for (; i < batch.length; i++) this.#buffer.push(batch[i] as HostEvent);
  }

  /** No more events will come: the buffered ones are still handed out, then `done`. */
  end(): void {
    this.#ended = true;
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.({ value: undefined, done: true });
  }

  next(): Promise<IteratorResult<HostEvent>> {
    if (this.#head < this.#buffer.length) {
      const value = this.#buffer[this.#head++] as HostEvent;
      // Drop consumed entries now and then, so a long-lived iterator does not keep them all.
      if (this.#head >= 1024 && this.#head * 2 >= this.#buffer.length) {
        this.#buffer = this.#buffer.slice(this.#head);
        this.#head = 0;
      }
      return Promise.resolve({ value, done: false });
    }
    if (this.#ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => {
      this.#waiting = resolve;
    });
  }

  return(): Promise<IteratorResult<HostEvent>> {
    this.#buffer = [];
    this.#head = 0;
    this.#detach();
    this.end();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

/**
 * Watches UDP heartbeats and reports which hosts are up, down or restarted.
 *
 * ```ts
 * const hw = new Heartwatch({ port: 7700, timeoutMs: 5000 });
 * hw.on('down', (e) => console.log(`${e.id} at ${e.address} is down (${e.reason})`));
 * await hw.listen();
 * ```
 *
 * Listener errors: a listener that throws, or returns a promise that rejects, does not stop
 * delivery; the other listeners and later events still run, and the error is emitted as
 * `'error'`. With no `'error'` listener it is rethrown on `process.nextTick`, as an uncaught
 * exception, the way EventEmitter treats an unhandled `'error'`: a bug in a listener must not
 * pass silently.
 */
export class Heartwatch extends EventEmitter<HeartwatchEvents> {
  readonly #options: ResolvedOptions;
  readonly #engine: Engine;
  #fallbackWarning: HeartwatchError | undefined;
  readonly #iterators = new Set<EventQueue>();
  #listening: Promise<ListenInfo> | undefined;
  #closing: Promise<void> | undefined;
  readonly #storm: StormGuard | undefined;
  #paused = false;

  /** Validates every option before anything starts; throws `HeartwatchError` (`ERR_HW_INVALID_OPTION`). */
  constructor(options: HeartwatchOptions = {}) {
    super();
    this.#options = resolveOptions(options);
    const storm = this.#options.storm;
    this.#storm =
      storm === null
        ? undefined
        : new StormGuard(
            storm,
            () => this.#engine.stats().hostsUp,
            (event) => this.#call('storm', event),
            (batch) => this.#deliver(batch),
          );
    const sink: EngineSink = {
      events: (batch) => this.#deliver(this.#storm?.filter(batch) ?? batch),
      warning: (message) => this.#warn(new HeartwatchError('ERR_HW_ENGINE_WARNING', message)),
      error: (error) => this.#listenerFailed(error),
    };
    const choice = this.#options.engine;
    if (choice === 'js') {
      this.#engine = createJsEngine(this.#options, sink);
    } else if (nativeEngineAvailable()) {
      this.#engine = createNativeEngine(this.#options, sink);
    } else {
      const load = loadNative();
      const reason = load.ok
        ? 'the native engine is not available in this build'
        : load.error.message;
      if (choice === 'native') {
        throw new HeartwatchError(
          'ERR_HW_NATIVE_UNAVAILABLE',
          `${reason} (engine: 'native' was asked for; 'auto' would fall back to the pure-TS engine)`,
          load.ok ? undefined : { cause: load.error },
        );
      }
      this.#engine = createJsEngine(this.#options, sink);
      this.#fallbackWarning = new HeartwatchError(
        'ERR_HW_NATIVE_UNAVAILABLE',
        `heartwatch: using the pure-TS engine, which handles far fewer heartbeats per second: ${reason}`,
        load.ok ? undefined : { cause: load.error },
      );
    }
  }

  /** Which engine runs: `'native'` (C++ threads) or `'js'` (the pure-TS fallback). */
  get engine(): 'native' | 'js' {
    return this.#engine.kind;
  }

  /** The options in effect, defaults filled in. */
  get options(): ResolvedOptions {
    return this.#options;
  }

  /**
   * Binds the socket(s) and starts the threads; resolves when all run, with the bound port.
   * Rejects with a `HeartwatchError` whose code is the errno name (`EADDRINUSE`, ...).
   * Calling it again returns the same promise. Once `close()` has been called, it rejects with
   * `ERR_HW_CLOSED` and starts nothing, on every engine: a closed instance stays closed.
   */
  listen(): Promise<ListenInfo> {
    // Decided here, above the engines, so that no engine can be started after its close().
    if (this.#closing !== undefined) {
      return Promise.reject(
        new HeartwatchError('ERR_HW_CLOSED', 'heartwatch: listen() after close()'),
      );
    }
    if (this.#listening === undefined) {
      const warning = this.#fallbackWarning;
      this.#fallbackWarning = undefined;
      if (warning !== undefined) this.#warn(warning);
      this.#listening = this.#engine.listen();
    }
    return this.#listening;
  }

  /** Counters, totals and per thread. Cheap and synchronous. */
  stats(): HeartwatchStats {
    return this.#engine.stats();
  }

  /**
   * Every tracked host, up or down; with `{ statuses: true }` each with its status. For
   * millions of hosts prefer {@link hostsIterator}.
   */
  async hosts(query: HostsQuery = {}): Promise<HostSnapshot[]> {
    const all: HostSnapshot[] = [];
    for await (const batch of this.#engine.hosts(checkedQuery(query))) {
      for (const host of batch) all.push(host);
    }
    return all;
  }

  /** The tracked hosts, streamed in batches (membership as of the call); statuses on request. */
  hostsIterator(query: HostsQuery = {}): AsyncIterable<HostSnapshot[]> {
    return this.#engine.hosts(checkedQuery(query));
  }

  /**
   * One tracked host, with its status when it has one; `undefined` when it is not tracked.
   * Asks only the worker that owns the host: cheap at any fleet size.
   */
  host(id: string): Promise<HostSnapshot | undefined> {
    if (typeof id !== 'string' || !/^[0-9]{1,20}$/.test(id) || BigInt(id) >= 2n ** 64n) {
      throw new HeartwatchError(
        'ERR_HW_INVALID_ARGUMENT',
        `host(id): expected a decimal u64 host id string, got ${typeof id === 'string' ? JSON.stringify(id) : typeof id}`,
      );
    }
    return this.#engine.host(id);
  }

  /**
   * Every event from now on, in order, as an async iterator; ends after `close()`. Each
   * iterator buffers without bound while its consumer is behind, so no event is lost; break
   * out of the loop to stop buffering.
   */
  events(): AsyncIterableIterator<HostEvent> {
    const queue: EventQueue = new EventQueue(() => this.#iterators.delete(queue));
    if (this.#closing === undefined) this.#iterators.add(queue);
    else queue.end();
    return queue;
  }

  /**
   * Forgets a host now, without an event; resolves `false` if it was not tracked. A host heard
   * again afterwards comes back as a new host (`up`, `recovered: false`).
   */
  remove(id: string): Promise<boolean> {
    if (typeof id !== 'string') {
      throw new HeartwatchError(
        'ERR_HW_INVALID_ARGUMENT',
        `remove(id): expected a decimal host id string, got ${typeof id}`,
      );
    }
    return this.#engine.remove(id);
  }

  /**
   * Replaces the authentication key ring without a restart (key rotation): 1 to 8 keys of 16 to
   * 1024 bytes, the signing key first. Every datagram sent after this returns is checked with
   * these keys only, so a rotation is: add the new key (`[newKey, oldKey]`), move senders to it,
   * then drop the old one (`[newKey]`). Works whether or not the server started with `auth`;
   * `auth.required` stays as it was. Throws `ERR_HW_INVALID_OPTION` for bad keys (the message
   * never shows key bytes) and `ERR_HW_CLOSED` after `close()`.
   */
  setKeys(keys: readonly Uint8Array[]): void {
    if (this.#closing !== undefined) {
      throw new HeartwatchError('ERR_HW_CLOSED', 'heartwatch: setKeys() after close()');
    }
    this.#engine.setKeys(checkAuthKeys('setKeys(keys)', keys));
  }

  /**
   * Backpressure for a consumer that falls behind (a pipe, a socket, a queue): no event is
   * delivered until {@link resume}. Nothing is lost and memory stays bounded: the engine holds
   * the events in order, and once `eventRingCapacity` of them wait (per worker thread on the
   * native engine) it stops declaring hosts down until resumed, as it does whenever JavaScript
   * falls behind. Heartbeats are still received and applied meanwhile; events they cause (new
   * hosts, recoveries, restarts, LEAVEs) are held too, so a sender that keeps changing its
   * incarnation or alternates LEAVE and heartbeats adds one held event per datagram. A host that
   * stops while expiry is held is reported down after `resume()`, with its real `lastSeen`.
   *
   * ```ts
   * hw.on('events', (batch) => {
   *   if (!out.write(batch.map((e) => JSON.stringify(e)).join('\n') + '\n')) hw.pause();
   * });
   * out.on('drain', () => hw.resume());
   * ```
   */
  pause(): void {
    this.#paused = true;
    this.#engine.pause();
  }

  /** Delivers the held events again, in order, from the next turn of the event loop. */
  resume(): void {
    this.#paused = false;
    this.#engine.resume();
  }

  /** Whether {@link pause} holds delivery. */
  isPaused(): boolean {
    return this.#paused;
  }

  /** Stops receiving, delivers the events still pending (also while paused), ends the iterators. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#engine.close().finally(() => {
      this.#storm?.close();
      for (const queue of this.#iterators) queue.end();
      this.#iterators.clear();
    });
    return this.#closing;
  }

  #deliver(batch: HostEvent[]): void {
    if (batch.length === 0) return;
    this.#call('events', batch);
    for (const event of batch) this.#call(event.type, event);
    for (const queue of this.#iterators) queue.push(batch);
  }

  /** Calls each listener on its own, so one that throws neither stops the others nor the engine. */
  #call(name: keyof HeartwatchEvents, arg: unknown): void {
    if (this.listenerCount(name) === 0) return;
    for (const listener of this.rawListeners(name) as Listener[]) {
      try {
        const result = listener.call(this, arg);
        if (result instanceof Promise)
          result.catch((error: unknown) => this.#listenerFailed(error));
      } catch (error) {
        this.#listenerFailed(error);
      }
    }
  }

  #listenerFailed(error: unknown): void {
    const err =
      error instanceof Error
        ? error
        : new HeartwatchError(
            'ERR_HW_LISTENER',
            `a listener threw a non-Error value: ${String(error)}`,
            {
              cause: error,
            },
          );
    if (this.listenerCount('error') === 0) {
      process.nextTick(() => {
        throw err;
      });
      return;
    }
    try {
      this.emit('error', err);
    } catch (fromErrorListener) {
      process.nextTick(() => {
        throw fromErrorListener;
      });
    }
  }

  /** Without a `'warning'` listener the warning goes to `process.emitWarning`, so it is seen once. */
  #warn(warning: HeartwatchError): void {
    if (this.listenerCount('warning') === 0) {
      process.emitWarning(warning.message, { code: warning.code });
      return;
    }
    this.#call('warning', warning);
  }
}

/** `query` as the engines take it; a wrong type is a clear error, not a silent default. */
function checkedQuery(query: HostsQuery): HostsQuery {
  if (typeof query !== 'object' || query === null) {
    throw new HeartwatchError(
      'ERR_HW_INVALID_ARGUMENT',
      `hosts(query): expected an object such as { statuses: true }, got ${query === null ? 'null' : typeof query}`,
    );
  }
  if (query.statuses !== undefined && typeof query.statuses !== 'boolean') {
    throw new HeartwatchError(
      'ERR_HW_INVALID_ARGUMENT',
      `hosts(query): "statuses" must be a boolean, got ${typeof query.statuses}`,
    );
  }
  return { statuses: query.statuses === true };
}
