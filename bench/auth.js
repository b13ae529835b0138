// `npm run bench:auth [-- --iterations N] [-- --cpu N]`: the per-datagram cost of heartbeat
// authentication (bench/native/auth_bench.cc): tag verification with the receiver's precomputed
// HMAC pads, with one key and a ring of two, a rejected tag, OpenSSL's one-shot HMAC for
// comparison, and the detector's replay check. Builds out/cmake/bench (Release) when needed.
const { spawnSync } = require('node:child_process');
const os = require('node:os');
const path = require('node:path');
const { buildNativeBench } = require('./lib/build.js');

const dir = buildNativeBench('auth_bench');
const args = process.argv.slice(2);
// Pin to the last CPU unless told otherwise: away from CPU 0, where interrupts land.
if (!args.includes('--cpu')) args.push('--cpu', String(os.cpus().length - 1));
const result = spawnSync(path.join(dir, 'auth_bench'), args, { stdio: 'inherit' });
process.exit(result.status ?? 1);
