import { readFileSync, statSync } from 'node:fs';
import { type AuthKeys, checkAuthKeys } from '../auth/keys.js';
import { UsageError } from './args.js';

/**
 * Reads `--auth-key-file F`: one key per line, hex-encoded (the decoded bytes are the key; 32
 * bytes recommended), the first line the signing key; blank lines and lines starting with `#`
 * are skipped. Refuses a file that is not a regular file or that group or other users may
 * read or write (it must be mode 0600 or stricter), and never puts key bytes in a message.
 */
export function readKeyFile(command: string, path: string): AuthKeys {
  const fail = (why: string): UsageError =>
    new UsageError(`heartwatch ${command}: --auth-key-file "${path}": ${why}`);
  let mode: number;
  try {
    const stat = statSync(path);
    if (!stat.isFile()) throw fail('not a regular file');
    mode = stat.mode & 0o777;
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw fail((err as Error).message);
  }
  if ((mode & 0o077) !== 0) {
    throw fail(
      `group or other users may access it (mode 0${mode.toString(8)}); a key file must be private: chmod 600 "${path}"`,
    );
  }
  const keys: Buffer[] = [];
  readFileSync(path, 'utf8')
    .split('\n')
    .forEach((raw, index) => {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) return;
      if (!/^(?:[0-9a-fA-F]{2})+$/.test(line)) {
        throw fail(`line ${index + 1} is not an even number of hex digits (the line is not shown)`);
      }
      keys.push(Buffer.from(line, 'hex'));
    });
  try {
    return checkAuthKeys('--auth-key-file', keys);
  } catch (err) {
    throw fail((err as Error).message.replace(/^Invalid option "--auth-key-file": /, ''));
  }
}
