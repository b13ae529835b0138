import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

/**
 * Another process of this user that tries to take a UDP port with SO_REUSEPORT (python3, so the
 * socket is a real one in a separate process, with no help from Node). It reports whether its
 * bind succeeded, then counts the datagrams it receives until told to stop.
 */
const script = `
import errno, socket, sys
host, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET6 if ':' in host else socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
try:
    s.bind((host, port))
except OSError as e:
    print('refused ' + errno.errorcode.get(e.errno, str(e.errno)), flush=True)
    sys.exit(0)
print('bound', flush=True)
s.settimeout(0.05)
count = 0
while True:
    try:
        s.recv(70000)
        count += 1
        continue
    except socket.timeout:
        pass
    if sys.stdin in __import__('select').select([sys.stdin], [], [], 0)[0]:
        break
print('received %d' % count, flush=True)
`;

export class PortThief {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #lines: AsyncIterator<string>;

  private constructor(child: ChildProcessWithoutNullStreams) {
    this.#child = child;
    this.#lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  }

  /** Starts the thief on `host`:`port`; resolves with its bind outcome. */
  static async start(
    host: string,
    port: number,
  ): Promise<{ thief: PortThief; outcome: 'bound' | string }> {
    const thief = new PortThief(spawn('python3', ['-c', script, host, String(port)]));
    const line = await thief.#lines.next();
    if (line.done === true) throw new Error('the python3 port thief exited without a word');
    return { thief, outcome: line.value };
  }

  /** Stops a bound thief and resolves with how many datagrams it took. */
  async stop(): Promise<number> {
    this.#child.stdin.end('stop\n');
    const line = await this.#lines.next();
    const match = line.done === true ? null : /^received (\d+)$/.exec(line.value);
    if (match?.[1] === undefined) throw new Error(`unexpected port thief answer: ${line.value}`);
    return Number(match[1]);
  }

  close(): Promise<void> {
    if (this.#child.exitCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      this.#child.once('exit', () => resolve());
      this.#child.kill();
    });
  }
}
