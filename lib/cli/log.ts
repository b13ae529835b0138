import { hostname } from 'node:os';

/** pino's numeric levels, so log shippers that know pino read these lines as they are. */
const levels = { info: 30, warn: 40, error: 50 } as const;
type Level = keyof typeof levels;

/**
 * Lifecycle lines, warnings and errors of a long-running command, on stderr. On a terminal they
 * are the plain lines people read; otherwise (a service manager, a container, a pipe) one JSON
 * object per line with pino's field names (`level`, `time`, `pid`, `hostname`, `msg`) plus any
 * fields given, so journald, Docker and log shippers get structured records.
 *
 * Runs on: the JS thread.
 */
export class Logger {
  readonly json: boolean;
  readonly #host = hostname();

  constructor(json = process.stderr.isTTY !== true) {
    this.json = json;
  }

  /** `text` is the line for people; `msg` (default: the same) the message of the JSON record. */
  info(text: string, fields: Record<string, unknown> = {}, msg = text): void {
    this.#write('info', text, msg, fields);
  }

  warn(text: string, fields: Record<string, unknown> = {}, msg = text): void {
    this.#write('warn', text, msg, fields);
  }

  error(text: string, fields: Record<string, unknown> = {}, msg = text): void {
    this.#write('error', text, msg, fields);
  }

  #write(level: Level, text: string, msg: string, fields: Record<string, unknown>): void {
    if (!this.json) {
      process.stderr.write(`${text}\n`);
      return;
    }
    const record = {
      level: levels[level],
      time: Date.now(),
      pid: process.pid,
      hostname: this.#host,
      msg,
      ...fields,
    };
    process.stderr.write(`${JSON.stringify(record)}\n`);
  }
}
