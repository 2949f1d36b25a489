// Moves the calling thread (Node's main thread: every koffi call runs on it)
// into a network namespace and back, so BPF_PROG_TEST_RUN runs there:
// bpf_fib_lookup in a test run routes through the namespace of the thread
// that runs it (its loopback is the frame's ingress device), and a lab node's
// namespace gives the routes and neighbours a case can predict, where the
// machine's own namespace would give whatever this host has.
// Spawn nothing while inside: children would be born in the namespace.
import { closeSync, openSync } from 'node:fs';
import { createRequire } from 'node:module';

// koffi ships as CommonJS.
const koffi = createRequire(import.meta.url)('koffi') as {
  load(path: string): { func(sig: string): (...args: unknown[]) => unknown };
  errno(): number;
};

const CLONE_NEWNET = 0x40000000;
let setnsFn: ((fd: number, nstype: number) => number) | null = null;

function setns(fd: number): void {
  setnsFn ??= koffi.load('libc.so.6').func('int setns(int fd, int nstype)') as (fd: number, nstype: number) => number;
  if (setnsFn(fd, CLONE_NEWNET) !== 0) throw new Error(`setns failed: errno ${koffi.errno()}`);
}

/** Enters /var/run/netns/NAME; returns a function that goes back. */
export function enterNetns(name: string): () => void {
  const home = openSync('/proc/thread-self/ns/net', 'r');
  const target = openSync(`/var/run/netns/${name}`, 'r');
  try {
    setns(target);
  } finally {
    closeSync(target);
  }
  return () => {
    try {
      setns(home);
    } finally {
      closeSync(home);
    }
  };
}
