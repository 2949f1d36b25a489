#!/usr/bin/python3
"""Interleaved TCP connection timing for bench/nodeport.ts, run by the lab in
the external client's namespace.

argv[1] is JSON: {"a": [host, port], "b": [host, port], "count", "timeoutMs"}.
`count` pairs; pair i connects to A then B when i is even, B then A when odd;
each connection: connect, read the server's one-line greeting (its answer),
close. Pairs a few milliseconds apart see the same machine: on a loaded
shared machine, runs seconds apart do not (measured: per-run ratios from
0.08 to 5 with the lab's client.py run once per side).

Prints one JSON object {"a": [ms...], "b": [ms...]}; exits 1 at the first
failed connection (the bench wants every one to succeed). Bounded: count is at
most 10,000 and every connection by timeoutMs.
"""
import json
import socket
import sys
import time


def once(host, port, timeout):
    start = time.monotonic()
    with socket.create_connection((host, port), timeout=timeout) as s:
        buf = b""
        while b"\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                raise OSError(f"{host}:{port} closed before answering")
            buf += chunk
    return (time.monotonic() - start) * 1000


def main():
    req = json.loads(sys.argv[1])
    count = min(int(req["count"]), 10_000)
    timeout = req["timeoutMs"] / 1000
    a, b = tuple(req["a"]), tuple(req["b"])
    out = {"a": [], "b": []}
    for i in range(count):
        for side in ("a", "b") if i % 2 == 0 else ("b", "a"):
            host, port = a if side == "a" else b
            try:
                out[side].append(once(host, port, timeout))
            except OSError as e:
                print(f"pair {i}, {side} {host}:{port}: {e}", file=sys.stderr)
                sys.exit(1)
    print(json.dumps(out))


main()
