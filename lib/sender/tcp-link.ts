import { connect, type Socket } from 'node:net';

/** The first reconnect waits about this long; each failure doubles it, up to `maxBackoffMs`. */
const firstBackoffMs = 100;
const maxBackoffMs = 30_000;
/**
 * Bytes a link lets wait in its socket's user-space buffer; a frame that would go beyond is
 * dropped, so a server that stops reading never makes the sender's memory grow.
 */
const maxQueuedBytes = 256 * 1024;

/**
 * One TCP connection from a {@link HeartbeatSender} to a heartwatch server, kept up in the
 * background: it reconnects after every close with exponential backoff and ±50 % jitter (so a
 * fleet that lost its server does not reconnect in lock-step), sets TCP_NODELAY (a heartbeat is
 * one small write that must not wait for Nagle), and never blocks its caller: a frame that
 * cannot be written now (no connection, or a full buffer) is dropped and counted.
 */
export class TcpLink {
  readonly #host: string;
  readonly #port: number;
  #socket: Socket | undefined;
  #connected = false;
  #failures = 0;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  /** Frames dropped because they could not be written when sent. */
  dropped = 0;
  /** Connections made, the first included. */
  connects = 0;

  constructor(host: string, port: number) {
    this.#host = host;
    this.#port = port;
  }

  get connected(): boolean {
    return this.#connected;
  }

  /** Makes the first attempt; resolves when it has connected or failed (it keeps retrying). */
  open(): Promise<void> {
    return new Promise((resolve) => this.#connect(resolve));
  }

  /** Writes one frame if it can now; returns whether it did. */
  send(frame: Uint8Array): boolean {
    const socket = this.#socket;
    if (!this.#connected || socket === undefined || socket.writableLength > maxQueuedBytes) {
      this.dropped += 1;
      return false;
    }
    socket.write(frame);
    return true;
  }

  /** Sends `last` (if connected), then ends the connection and stops reconnecting. */
  close(last?: Uint8Array): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    const socket = this.#socket;
    if (socket === undefined || socket.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      socket.once('close', () => resolve());
      if (last !== undefined && this.#connected) socket.end(last);
      else socket.destroy();
    });
  }

  #connect(settled?: () => void): void {
    if (this.#closed) return;
    const socket = connect({ host: this.#host, port: this.#port, noDelay: true });
    this.#socket = socket;
    socket.on('connect', () => {
      this.#connected = true;
      this.#failures = 0;
      this.connects += 1;
      settled?.();
    });
    // The server never writes; reading keeps a FIN or RST visible.
    socket.on('data', () => {});
    socket.on('error', () => {});
    socket.on('close', () => {
      this.#connected = false;
      settled?.();
      if (this.#closed) return;
      const backoff = Math.min(maxBackoffMs, firstBackoffMs * 2 ** this.#failures);
      this.#failures = Math.min(this.#failures + 1, 20);
      this.#timer = setTimeout(() => this.#connect(), backoff * (0.5 + Math.random()));
      this.#timer.unref();
    });
  }
}
