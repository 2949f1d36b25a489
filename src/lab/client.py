#!/usr/bin/python3
"""Lab client: run by the lab inside the cgroup and network namespace of a pod,
a node or the external client.

argv[1] is JSON: {"proto": "tcp"|"udp"|"udp-connected"|"hold", "host", "port",
"count", "timeoutMs", "payload"?, "intervalMs"?}.

tcp, udp, udp-connected: `count` attempts, each on a new socket (so a new
source port), each bounded by timeoutMs; with "intervalMs", attempt i starts
no earlier than i * intervalMs after the first (a steady rate). Prints one
JSON array with a result per attempt: {"ok": true, "pod", "client", "local",
"peer", "ms"} or {"ok": false, "error": ERRNO_NAME, "ms"}. "peer" is what
getpeername() (tcp, udp-connected) or recvfrom() (udp) reported for the server
side.

hold: one TCP connection. Prints the first result as one JSON line, then for
each line on stdin sends it and prints {"reply": LINE} or {"error": ERRNO_NAME};
EOF on stdin closes the connection.
"""
import errno
import json
import socket
import sys
import time


class Failure(Exception):
    def __init__(self, name):
        super().__init__(name)
        self.name = name


def errno_name(e):
    if isinstance(e, Failure):
        return e.name
    if isinstance(e, (socket.timeout, TimeoutError)) and not e.errno:
        return "ETIMEDOUT"
    if isinstance(e, OSError) and e.errno:
        return errno.errorcode.get(e.errno, f"E{e.errno}")
    if isinstance(e, (ValueError, UnicodeDecodeError)):
        return "EBADMSG"
    return "EIO"


def fmt(addr):
    host, port = addr[0], addr[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def family_of(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def remaining(deadline):
    left = deadline - time.monotonic()
    if left <= 0:
        raise Failure("ETIMEDOUT")
    return left


def read_line(sock, deadline, buf=b""):
    while b"\n" not in buf:
        sock.settimeout(remaining(deadline))
        chunk = sock.recv(4096)
        if not chunk:
            raise Failure("ENODATA")
        buf += chunk
    line, rest = buf.split(b"\n", 1)
    return line.decode(), rest


def success(answer_line, peer):
    answer = json.loads(answer_line)
    if not isinstance(answer, dict) or not all(isinstance(answer.get(k), str) for k in ("pod", "client", "local")):
        raise Failure("EBADMSG")
    return {"ok": True, "pod": answer["pod"], "client": answer["client"], "local": answer["local"], "peer": peer}


def tcp_connect(host, port, deadline):
    sock = socket.socket(family_of(host), socket.SOCK_STREAM)
    try:
        sock.settimeout(remaining(deadline))
        sock.connect((host, port))
        peer = fmt(sock.getpeername())
        line, rest = read_line(sock, deadline)
        return sock, success(line, peer), rest
    except BaseException:
        sock.close()
        raise


def attempt_tcp(req, deadline):
    sock, result, _ = tcp_connect(req["host"], req["port"], deadline)
    sock.close()
    return result


def attempt_udp(req, deadline, connected):
    host, port = req["host"], req["port"]
    payload = req.get("payload", "ping").encode()
    with socket.socket(family_of(host), socket.SOCK_DGRAM) as sock:
        sock.settimeout(remaining(deadline))
        if connected:
            sock.connect((host, port))
            sock.send(payload)
            sock.settimeout(remaining(deadline))
            data = sock.recv(65535)
            peer = fmt(sock.getpeername())
        else:
            sock.sendto(payload, (host, port))
            sock.settimeout(remaining(deadline))
            data, addr = sock.recvfrom(65535)
            peer = fmt(addr)
        return success(data.decode().strip(), peer)


def run_attempts(req):
    attempt = {
        "tcp": attempt_tcp,
        "udp": lambda r, d: attempt_udp(r, d, False),
        "udp-connected": lambda r, d: attempt_udp(r, d, True),
    }[req["proto"]]
    results = []
    interval = req.get("intervalMs", 0) / 1000
    first = time.monotonic()
    for i in range(int(req["count"])):
        wait = first + i * interval - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        start = time.monotonic()
        try:
            result = attempt(req, start + req["timeoutMs"] / 1000)
        except Exception as e:
            result = {"ok": False, "error": errno_name(e)}
        result["ms"] = round((time.monotonic() - start) * 1000, 3)
        results.append(result)
    print(json.dumps(results), flush=True)


def hold(req):
    timeout = req["timeoutMs"] / 1000
    start = time.monotonic()
    try:
        sock, result, buf = tcp_connect(req["host"], req["port"], start + timeout)
    except Exception as e:
        print(json.dumps({"ok": False, "error": errno_name(e), "ms": round((time.monotonic() - start) * 1000, 3)}), flush=True)
        return
    result["ms"] = round((time.monotonic() - start) * 1000, 3)
    print(json.dumps(result), flush=True)
    with sock:
        for line in sys.stdin:
            try:
                sock.settimeout(timeout)
                sock.sendall(line.rstrip("\n").encode() + b"\n")
                reply, buf = read_line(sock, time.monotonic() + timeout, buf)
                print(json.dumps({"reply": reply}), flush=True)
            except Exception as e:
                print(json.dumps({"error": errno_name(e)}), flush=True)


def main():
    req = json.loads(sys.argv[1])
    if req["proto"] == "hold":
        hold(req)
    else:
        run_attempts(req)


if __name__ == "__main__":
    main()
