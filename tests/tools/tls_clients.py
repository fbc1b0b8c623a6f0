#!/usr/bin/env python3
"""tls_clients.py - raw TLS clients for the hub's end-to-end server tests:
many concurrent keep-alive connections, a trickling client, an idle client,
the connection limit, pipelining and the per-connection request limit.

Usage: tls_clients.py MODE --port P --ca CA [--cert C --key K] [options]
Prints one line of results; exits 0 when the behaviour was as expected.
"""
import argparse
import asyncio
import resource
import socket
import ssl
import sys
import time


def context(a):
    ctx = ssl.create_default_context(cafile=a.ca)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if a.cert:
        ctx.load_cert_chain(a.cert, a.key)
    return ctx


def request(path="/healthz", extra=""):
    return (f"GET {path} HTTP/1.1\r\nHost: localhost\r\n{extra}\r\n").encode()


async def read_response(reader):
    """Returns (status, headers dict, body) or raises on EOF."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for l in lines[1:]:
        if ":" in l:
            k, v = l.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", "0"))
    body = await reader.readexactly(n) if n else b""
    return status, headers, body


async def open_conn(a, ctx):
    return await asyncio.open_connection("127.0.0.1", a.port, ssl=ctx,
                                         server_hostname="localhost")


async def many(a):
    ctx = context(a)
    sem = asyncio.Semaphore(200)           # pace the handshakes, not the holding
    conns = []

    async def one():
        async with sem:
            r, w = await asyncio.wait_for(open_conn(a, ctx), 60)
            w.write(request())
            st, h, _ = await asyncio.wait_for(read_response(r), 60)
            if st != 200 or h.get("connection") != "keep-alive":
                raise RuntimeError(f"first answer {st} {h.get('connection')}")
            conns.append((r, w))

    res = await asyncio.gather(*[one() for _ in range(a.n)], return_exceptions=True)
    errs = [e for e in res if isinstance(e, BaseException)]
    opened = len(conns)
    # every connection is open at once now: a second request on each
    async def again(r, w):
        w.write(request())
        st, _, _ = await asyncio.wait_for(read_response(r), 60)
        return st

    res2 = await asyncio.gather(*[again(r, w) for r, w in conns], return_exceptions=True)
    ok2 = sum(1 for s in res2 if s == 200)
    for _, w in conns:
        w.close()
    print(f"opened {opened} of {a.n}, second request ok on {ok2}"
          + (f"; first error: {errs[0]!r}" if errs else ""))
    return opened == a.n and ok2 == a.n


async def trickle(a):
    """Sends a request head one byte at a time; measures when the server cuts it off."""
    ctx = context(a)
    r, w = await open_conn(a, ctx)
    data = request("/healthz", "X-Slow: " + "a" * 200 + "\r\n")
    t0 = time.monotonic()
    sent = 0
    try:
        for b in data[:-4]:              # never finish the head
            w.write(bytes([b]))
            await w.drain()
            sent += 1
            try:
                got = await asyncio.wait_for(r.read(1), a.interval)
                if got == b"":
                    break
            except asyncio.TimeoutError:
                pass
            if time.monotonic() - t0 > a.max:
                print(f"still open after {a.max:.0f} s ({sent} bytes sent)")
                return False
    except (ConnectionError, ssl.SSLError):
        pass
    dt = time.monotonic() - t0
    print(f"cut off after {dt:.1f} s ({sent} bytes sent)")
    return a.min <= dt <= a.max


async def idle(a):
    """One request, then silence: the server should close at the idle timeout."""
    ctx = context(a)
    r, w = await open_conn(a, ctx)
    w.write(request())
    st, _, _ = await read_response(r)
    t0 = time.monotonic()
    try:
        got = await asyncio.wait_for(r.read(1), a.max)
    except asyncio.TimeoutError:
        print(f"still open after {a.max:.0f} s")
        return False
    except (ConnectionError, ssl.SSLError):
        got = b""
    dt = time.monotonic() - t0
    print(f"status {st}, closed after {dt:.1f} s idle")
    return got == b"" and a.min <= dt <= a.max


async def maxconn(a):
    """Holds N connections, then checks the next one is closed at once."""
    ctx = context(a)
    held = []
    for _ in range(a.n):
        r, w = await open_conn(a, ctx)
        w.write(request())
        st, _, _ = await read_response(r)
        held.append((r, w))
    refused = False
    try:
        r, w = await asyncio.wait_for(open_conn(a, ctx), 10)
        w.write(request())
        await asyncio.wait_for(read_response(r), 10)
    except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError, OSError):
        refused = True
    except asyncio.TimeoutError:
        refused = False
    for _, w in held:
        w.close()
    print(f"held {len(held)}, extra connection {'refused' if refused else 'served'}")
    return refused


async def pipeline(a):
    ctx = context(a)
    r, w = await open_conn(a, ctx)
    w.write(request() + request("/readyz") + request("/nope"))
    got = [(await read_response(r))[0] for _ in range(3)]
    w.close()
    print("statuses", got)
    return got == [200, 200, 404]


async def reqlimit(a):
    """Sequential requests on one connection until the server says close."""
    ctx = context(a)
    r, w = await open_conn(a, ctx)
    n = 0
    last = ""
    while n < 100:
        w.write(request())
        st, h, _ = await read_response(r)
        n += 1
        last = h.get("connection", "")
        if last == "close":
            break
    eof = (await r.read(1)) == b""
    print(f"{n} requests, last said Connection: {last}, then {'EOF' if eof else 'more data'}")
    return n == a.n and last == "close" and eof


async def inflight(a):
    """Starts a request, has the hub sent SIGTERM, finishes the request: the
    answer must still come, saying Connection: close."""
    import os, signal
    ctx = context(a)
    r, w = await open_conn(a, ctx)
    data = request()
    w.write(data[:10])
    await w.drain()
    await asyncio.sleep(0.3)
    os.kill(a.pid, signal.SIGTERM)
    await asyncio.sleep(0.5)
    w.write(data[10:])
    st, h, _ = await asyncio.wait_for(read_response(r), 10)
    eof = (await r.read(1)) == b""
    print(f"status {st}, Connection: {h.get('connection')}, then {'EOF' if eof else 'more'}")
    return st == 200 and h.get("connection") == "close" and eof


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["many", "trickle", "idle", "maxconn", "pipeline", "reqlimit", "inflight"])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--n", type=int, default=1)
    p.add_argument("--pid", type=int, default=0)
    p.add_argument("--interval", type=float, default=0.5)
    p.add_argument("--min", type=float, default=0)
    p.add_argument("--max", type=float, default=30)
    a = p.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    ok = asyncio.run(globals()[a.mode](a))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
