// End-to-end smoke of an installed heartwatch, run by whatever Node binary is being proven (an
// arm64 Node under qemu-user, for the arm64 prebuild): loads the package, checks the prebuilt
// binary for this platform is what loaded, then on loopback has one sender beat until the host is
// 'up', stops it without a LEAVE, and waits for the 'down' the timeout gives. Prints one JSON
// line; exits 1 on any failure, or when nothing happens within 60 s.
// Usage (from the directory that has node_modules/heartwatch): node installed-smoke.js
const { Heartwatch, HeartbeatSender, nativeInfo } = require('heartwatch');

const deadline = setTimeout(() => fail('no up and down within 60 s'), 60_000);

function fail(message) {
  console.log(JSON.stringify({ ok: false, message, arch: process.arch, nativeInfo: nativeInfo() }));
  process.exit(1);
}

async function main() {
  const info = nativeInfo();
  if (!info.loaded || info.source !== 'prebuild') fail('the prebuilt binary did not load');
  // One receiver: qemu-user cannot emulate the cBPF program a group of several attaches.
  const hw = new Heartwatch({
    host: '127.0.0.1',
    port: 0,
    timeoutMs: 1000,
    engine: 'native',
    receivers: 1,
    workers: 1,
  });
  const up = new Promise((resolve) => hw.once('up', resolve));
  const down = new Promise((resolve) => hw.once('down', resolve));
  const { port } = await hw.listen();
  const sender = new HeartbeatSender({
    server: `udp://127.0.0.1:${port}`,
    hostId: 42n,
    intervalMs: 100,
  });
  await sender.start();
  const upEvent = await up;
  await sender.close({ leave: false });
  const downEvent = await down;
  await hw.close();
  clearTimeout(deadline);
  console.log(
    JSON.stringify({
      ok: String(upEvent.id) === '42' && downEvent.reason === 'timeout',
      arch: process.arch,
      engine: hw.engine,
      file: info.file,
      up: String(upEvent.id),
      down: downEvent.reason,
    }),
  );
}

main().catch((error) => fail(error.stack ?? String(error)));
