#!/usr/bin/python3
"""Lab UDP streamer: long-lived UDP sockets that each send one datagram per
tick and wait for the answer, like an application talking to a UDP service.

Run by the lab inside a pod's cgroup and network namespace. argv[1] is JSON:
{"sockets": [{"name", "host", "port", "bind", "connect"}], "intervalMs", "maxMs"}
- bind: the fixed local port of the socket;
- connect: true for a connected socket (connect() once, then send/recv),
  false for an unconnected one (sendto/recvfrom every tick).

Each tick, every socket sends "<name> <seq>" and the streamer waits for the
answers until the next tick, blocked in select() the way an event loop
waits: an error the kernel posts on a socket (ECONNABORTED when the socket is
destroyed) is seen at once. Per socket and tick it prints one JSON line:
{"name", "seq", "sent" (wall-clock seconds), "pod", "client"} for an answer,
{"name", "seq", "sent", "error": ERRNO_NAME} for an error (ETIMEDOUT: no
answer within the tick). A connected socket that gets an error reconnects at
once, on the same socket and local port: {"name", "reconnected": t, "error"?}.

Stops when stdin closes, or after maxMs (at most 120 s).
"""
import errno
import json
import os
import select
import socket
import sys
import time


def errno_name(e):
    if isinstance(e, OSError) and e.errno:
        return errno.errorcode.get(e.errno, f"E{e.errno}")
    return "EIO"


def out(obj):
    print(json.dumps(obj), flush=True)


class Stream:
    def __init__(self, spec):
        self.name = spec["name"]
        self.target = (spec["host"], int(spec["port"]))
        self.connected = bool(spec["connect"])
        family = socket.AF_INET6 if ":" in spec["host"] else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", int(spec["bind"])))
        self.sock.setblocking(False)
        if self.connected:
            self.sock.connect(self.target)
        self.pending = None  # the tick's record until answered or timed out

    def reconnect(self, why):
        # After bpf_sock_destroy the kernel has disconnected the socket; an
        # application connects again, and the connect hook picks anew.
        rec = {"name": self.name, "reconnected": time.time(), "after": why}
        try:
            self.sock.connect(self.target)
        except OSError as e:
            rec["error"] = errno_name(e)
        out(rec)

    def send(self, seq):
        self.pending = {"name": self.name, "seq": seq, "sent": time.time()}
        payload = f"{self.name} {seq}".encode()
        try:
            if self.connected:
                self.sock.send(payload)
            else:
                self.sock.sendto(payload, self.target)
        except OSError as e:
            self.fail(errno_name(e))

    def fail(self, name):
        if self.pending is not None:
            self.pending["error"] = name
            out(self.pending)
            self.pending = None
        else:
            out({"name": self.name, "error": name, "at": time.time()})
        if self.connected:
            self.reconnect(name)

    def readable(self):
        try:
            data = self.sock.recv(65535)
        except BlockingIOError:
            return
        except OSError as e:
            self.fail(errno_name(e))
            return
        if self.pending is None:
            return  # a late answer to a tick already reported as timed out
        try:
            answer = json.loads(data.decode())
            self.pending["pod"] = answer["pod"]
            self.pending["client"] = answer["client"]
        except (ValueError, KeyError, UnicodeDecodeError):
            self.pending["error"] = "EBADMSG"
        out(self.pending)
        self.pending = None

    def tick_over(self):
        if self.pending is not None:
            self.pending["error"] = "ETIMEDOUT"
            out(self.pending)
            self.pending = None


def main():
    req = json.loads(sys.argv[1])
    interval = max(0.01, req["intervalMs"] / 1000)
    deadline = time.monotonic() + min(req.get("maxMs", 60_000), 120_000) / 1000
    streams = [Stream(s) for s in req["sockets"]]
    by_fd = {s.sock.fileno(): s for s in streams}
    stdin = sys.stdin.fileno()
    out({"ready": time.time()})
    seq = 0
    while time.monotonic() < deadline:
        seq += 1
        for s in streams:
            s.send(seq)
        tick_end = time.monotonic() + interval
        while True:
            left = tick_end - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select([stdin, *by_fd.keys()], [], [], left)
            for fd in ready:
                if fd == stdin:
                    if not os.read(stdin, 4096):
                        return
                    continue
                by_fd[fd].readable()
        for s in streams:
            s.tick_over()


if __name__ == "__main__":
    main()
