// Prints, for binding.gyp, how the addon gets the io_uring receive backend: with liburing's
// header and static library on this machine (Debian: liburing-dev), the define that compiles the
// backend in and the flags that link liburing.a into the addon, its symbols kept private, so the
// binary loads where liburing is not installed. Without them it prints nothing: the addon builds
// with recvmmsg alone, and receiveBackend 'io_uring' says so (native/core/net/uring_reader.h).
//   node scripts/liburing.js defines | libraries
const { spawnSync } = require('node:child_process');
const path = require('node:path');

function found() {
  const compiler = process.env.CXX || 'c++';
  const library = spawnSync(compiler, ['-print-file-name=liburing.a'], { encoding: 'utf8' });
  if (library.status !== 0 || !path.isAbsolute(library.stdout.trim())) return false;
  const header = spawnSync(compiler, ['-E', '-x', 'c++', '-'], {
    input: '#include <liburing.h>\n',
    encoding: 'utf8',
  });
  return header.status === 0;
}

const want = process.argv[2];
if (want !== 'defines' && want !== 'libraries') {
  console.error('usage: node scripts/liburing.js defines|libraries');
  process.exit(2);
}
if (found()) {
  console.log(
    want === 'defines' ? 'HW_HAVE_LIBURING=1' : '-l:liburing.a -Wl,--exclude-libs,liburing.a',
  );
}
