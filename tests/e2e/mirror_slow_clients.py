#!/usr/bin/env python3
"""mirror_slow_clients.py HOST PORT SRC PATH READY_FILE: slow-client load on
the agent's mirror for test_agent_mirror.sh. From source address SRC it opens
4 connections (group a), 2 s later 4 more (b) and 12 more (c), each sending
half a request header and never the rest; writes READY_FILE once all are
open, then waits up to 20 s for the server to close them. Prints JSON: for a
and b each connection's open and close times (absolute, s) and the first
status code it got; for c how many were answered 503 / reset / closed
within 1 s."""
import json, select, socket, sys, time

host, port, src, path, ready = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
half = ("GET %s/info/refs?service=git-upload-pack HTTP/1.1\r\nHost: x\r\n" % path).encode()

def open_one():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((src, 0))
    s.connect((host, port))
    s.sendall(half)
    return {"sock": s, "open": time.time(), "close": None, "status": None, "data": b""}

def poll(conns, until):
    while time.time() < until and any(c["close"] is None for c in conns):
        live = [c for c in conns if c["close"] is None]
        r, _, _ = select.select([c["sock"] for c in live], [], [], 0.05)
        for c in live:
            if c["sock"] not in r:
                continue
            try:
                d = c["sock"].recv(4096)
            except ConnectionResetError:
                d = None
                c["status"] = c["status"] or "reset"
            if d:
                c["data"] += d
                continue
            c["close"] = time.time()
            if c["status"] is None:
                parts = c["data"].split(b" ", 2)
                c["status"] = parts[1].decode() if len(parts) > 1 else "eof"

a = [open_one() for _ in range(4)]
time.sleep(2)
b = [open_one() for _ in range(4)]
c = []
for _ in range(12):
    try:
        c.append(open_one())
    except OSError as e:              # refused while connecting (backlog) also counts
        c.append({"sock": None, "open": time.time(), "close": time.time(), "status": "connect:" + e.__class__.__name__, "data": b""})
poll([x for x in c if x["sock"]], time.time() + 1.0)
open(ready, "w").write("%f\n" % time.time())
poll(a + b, time.time() + 20)
out = {
    "a": [{"open": x["open"], "close": x["close"], "status": x["status"]} for x in a],
    "b": [{"open": x["open"], "close": x["close"], "status": x["status"]} for x in b],
    "c_closed_1s": sum(1 for x in c if x["close"] is not None and x["close"] - x["open"] < 1.5),
    "c_503": sum(1 for x in c if x["status"] == "503"),
    "c_status": sorted(set(str(x["status"]) for x in c)),
}
print(json.dumps(out))
