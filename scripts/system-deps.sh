#!/usr/bin/env bash
# Installs the Debian packages the test suite needs beyond Node.js: CMake + Ninja for the C++
# core, GoogleTest for its unit tests, clang 14 with libFuzzer and the sanitizer runtimes for the
# fuzzers, tcmalloc (optional at run time; the tests check both allocator backends), the arm64
# cross compiler, with which the tests prove the addon's sources build for arm64, libssl-dev
# for the standalone C++ build's SHA-256 (the addon uses the OpenSSL inside node), and
# liburing-dev, whose static liburing.a the addon links for its io_uring reader (without it the
# addon builds with recvmmsg alone; scripts/liburing.js).
# Used by .ci/run, and by `npm test` when it finds one of them missing on a fresh machine.
set -euo pipefail
packages=(cmake ninja-build g++ make python3 libgtest-dev clang-14 libclang-rt-14-dev libgoogle-perftools-dev g++-aarch64-linux-gnu chromium libssl-dev liburing-dev)
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "heartwatch: need root and apt-get to install: ${packages[*]}" >&2
  echo "install them with your system's package manager, then rerun the tests" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null

# The benchmark's peers (bench/peers/): Redis and etcd, which `npm run bench` starts on loopback
# and the peer smoke tests in test/ts/bench-suite.test.ts run against (they say they are skipped
# where these are missing; nothing else in `npm test` needs them). The bench starts its own
# servers on free ports, so the packaged services are kept from starting on install: a
# policy-rc.d that says no, for this install only, where the machine has none.
peers=(redis-server etcd-server)
if ! dpkg -s "${peers[@]}" >/dev/null 2>&1; then
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod +x "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  apt-get install -y -qq --no-install-recommends "${peers[@]}" >/dev/null
fi
