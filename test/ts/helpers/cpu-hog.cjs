// Spins one core for argv[2] ms, then exits: a CPU hog for tests of heartwatch under starvation.
const until = Date.now() + Number(process.argv[2]);
while (Date.now() < until) {
  // busy
}
