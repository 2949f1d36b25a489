#!/usr/bin/python3
"""Pod servers of one lab node: one process serves every pod of the node.

Started by the lab inside the node's cgroup and network namespace. For each
endpoint (a pod, or the node itself as a host-network pod) it enters the
endpoint's network namespace, binds its sockets there, and comes back: a socket
stays in the namespace it was created in, so one process can serve them all
with one selector loop.

argv[1] is JSON: {"ports": [80, ...], "endpoints": [{"name", "netns", "addrs": [ip, ...]}]}
where "netns" is a path such as /var/run/netns/bpx-abc123-n1p1.

Every answer is one line of JSON: {"pod", "client", "local"} with addresses as
"IP:PORT" ("[IP]:PORT" for IPv6) as this server sees them. TCP sends it on
accept, keeps the connection, and answers each line it receives with
"<pod> <line>". UDP answers each datagram with it.

stdin takes commands, one per line, each answered on stdout with "ok" or
"error <reason>":  "down NAME" closes NAME's listening sockets (established
connections stay), "up NAME" binds them again. EOF on stdin (the lab is gone)
ends the process. stdout says "ready" once every socket is bound.
"""
import json
import os
import selectors
import socket
import sys

from netns import entered

MAX_LINE = 65536


def fmt(addr):
    host, port = addr[0], addr[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def answer(pod, client, local):
    return (json.dumps({"pod": pod, "client": fmt(client), "local": fmt(local)}) + "\n").encode()


class Endpoint:
    def __init__(self, name, netns, addrs, ports):
        self.name = name
        self.netns = netns
        self.addrs = addrs
        self.ports = ports
        self.listeners = []

    def open(self, sel):
        # A socket stays in the namespace it was created in, whatever the
        # process does afterwards.
        try:
            with entered(self.netns):
                for addr in self.addrs:
                    for port in self.ports:
                        self._bind(sel, addr, port, socket.SOCK_STREAM)
                        self._bind(sel, addr, port, socket.SOCK_DGRAM)
        except OSError:
            self.close(sel)
            raise

    def _bind(self, sel, addr, port, kind):
        family = socket.AF_INET6 if ":" in addr else socket.AF_INET
        s = socket.socket(family, kind)
        try:
            if family == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if kind == socket.SOCK_STREAM:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((addr, port))
            if kind == socket.SOCK_STREAM:
                s.listen(128)
            s.setblocking(False)
        except OSError as e:
            s.close()
            raise OSError(e.errno, f"{self.name}: bind {fmt((addr, port))}/{'tcp' if kind == socket.SOCK_STREAM else 'udp'}: {e.strerror}") from e
        self.listeners.append(s)
        sel.register(s, selectors.EVENT_READ, ("listen" if kind == socket.SOCK_STREAM else "udp", self))

    def close(self, sel):
        for s in self.listeners:
            try:
                sel.unregister(s)
            except (KeyError, ValueError):
                pass
            s.close()
        self.listeners = []


class Connection:
    def __init__(self, sock, endpoint):
        self.sock = sock
        self.endpoint = endpoint
        self.buf = b""


def main():
    config = json.loads(sys.argv[1])
    ports = [int(p) for p in config["ports"]]
    sel = selectors.DefaultSelector()
    endpoints = {}
    for e in config["endpoints"]:
        ep = Endpoint(e["name"], e["netns"], e["addrs"], ports)
        ep.open(sel)
        endpoints[ep.name] = ep
    sel.register(sys.stdin.buffer.raw, selectors.EVENT_READ, ("control", None))
    print("ready", flush=True)
    control_buf = b""
    while True:
        for key, _ in sel.select():
            kind, obj = key.data
            if kind == "control":
                chunk = os.read(key.fd, 4096)
                if not chunk:
                    return
                control_buf += chunk
                while b"\n" in control_buf:
                    line, control_buf = control_buf.split(b"\n", 1)
                    print(control(line.decode().strip(), endpoints, sel), flush=True)
            elif kind == "listen":
                accept(key.fileobj, obj, sel)
            elif kind == "udp":
                serve_datagram(key.fileobj, obj)
            elif kind == "conn":
                serve_line(obj, sel)


def control(line, endpoints, sel):
    parts = line.split(" ", 1)
    if len(parts) != 2 or parts[0] not in ("up", "down"):
        return f"error unknown command {line!r}"
    ep = endpoints.get(parts[1])
    if ep is None:
        return f"error no endpoint {parts[1]!r}"
    if parts[0] == "down":
        ep.close(sel)
        return "ok"
    if ep.listeners:
        return "ok"
    try:
        ep.open(sel)
    except OSError as e:
        return f"error {e}"
    return "ok"


def accept(listener, ep, sel):
    try:
        sock, client = listener.accept()
    except (BlockingIOError, ConnectionAbortedError):
        return
    try:
        sock.setblocking(False)
        sock.send(answer(ep.name, client, sock.getsockname()))
    except OSError:
        sock.close()
        return
    sel.register(sock, selectors.EVENT_READ, ("conn", Connection(sock, ep)))


def serve_datagram(sock, ep):
    try:
        _, client = sock.recvfrom(65535)
        sock.sendto(answer(ep.name, client, sock.getsockname()), client)
    except (BlockingIOError, ConnectionRefusedError):
        # A refused earlier reply surfaces as an error on the next call; it
        # concerns a client that is gone, not this datagram.
        pass


def serve_line(conn, sel):
    try:
        chunk = conn.sock.recv(4096)
    except BlockingIOError:
        return
    except OSError:
        chunk = b""
    if not chunk or len(conn.buf) + len(chunk) > MAX_LINE:
        sel.unregister(conn.sock)
        conn.sock.close()
        return
    conn.buf += chunk
    while b"\n" in conn.buf:
        line, conn.buf = conn.buf.split(b"\n", 1)
        try:
            conn.sock.send(conn.endpoint.name.encode() + b" " + line + b"\n")
        except OSError:
            sel.unregister(conn.sock)
            conn.sock.close()
            return


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
    except OSError as e:
        print(f"podserver: {e}", file=sys.stderr, flush=True)
        sys.exit(1)
