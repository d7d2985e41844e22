#!/usr/bin/env python3
"""tests/web/client.py — the HTTP side of tests/cli_serve.sh (standard library only).

  client.py get URL                      status line, then the body
  client.py post URL BODY|@FILE          the same for a POST
  client.py same URL FILE                exit 0 when URL's JSON equals FILE's JSON (parsed)
  client.py postsame URL BODY FILE      exit 0 when POSTing BODY answers FILE's JSON (parsed)
  client.py stream URL BODY DONE.json    POST /api/generate: checks the event stream
                                         (tokens, then one done equal to DONE.json; the
                                         tokens spell the done document's runs)
  client.py busy URL BODY                starts a generation, holds it open, and checks
                                         that a second one gets 429 with Retry-After
  client.py big URL BYTES [chunked]     a POST body of BYTES (declared, or chunked): 413
  client.py raw HOST PORT                malformed requests over raw sockets
  client.py slow HOST PORT SECONDS      half a request, then silence: closed within SECONDS
  client.py load URL N CONCURRENCY       N GETs, CONCURRENCY at a time: all 200; prints p50/p99
"""
import concurrent.futures
import http.client
import json
import socket
import sys
import time
import urllib.parse

TIMEOUT = 20


def request(url, method="GET", body=None, headers=None):
    u = urllib.parse.urlsplit(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=TIMEOUT)
    path = u.path + ("?" + u.query if u.query else "")
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, dict(r.getheaders()), data


def events(text):
    """The (event, data) pairs of an event stream."""
    out = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        ev, data = "message", ""
        for line in block.split("\n"):
            if line.startswith("event: "):
                ev = line[7:]
            elif line.startswith("data: "):
                data += line[6:]
        out.append((ev, json.loads(data)))
    return out


def cmd_stream(url, body, done_file):
    status, headers, data = request(url, "POST", body.encode(), {"Content-Type": "application/json"})
    if status != 200 or not headers.get("Content-Type", "").startswith("text/event-stream"):
        sys.exit(f"status {status}, type {headers.get('Content-Type')}: {data[:200]!r}")
    evs = events(data.decode())
    want = json.load(open(done_file))
    if [e for e, _ in evs].count("done") != 1 or evs[-1][0] != "done":
        sys.exit("the stream must end with exactly one done event: " + str([e for e, _ in evs][-3:]))
    if evs[-1][1] != want:
        sys.exit(f"done differs from the CLI's document:\n{json.dumps(evs[-1][1])[:600]}\n{json.dumps(want)[:600]}")
    runs = ["baseline"] + (["clamped"] if "clamped" in want else [])
    toks = [d for e, d in evs if e == "token"]
    order = [d["run"] for d in toks]
    if order != sorted(order, key=runs.index):
        sys.exit("token events out of order: " + str(order))
    for run in runs:
        ids = [d["id"] for d in toks if d["run"] == run]
        text = "".join(d["text"] for d in toks if d["run"] == run)
        if ids != want[run]["ids"] or text != want[run]["text"]:
            sys.exit(f"{run}: the tokens spell {ids} {text!r}, the document {want[run]['ids']} {want[run]['text']!r}")


def cmd_busy(url, body):
    u = urllib.parse.urlsplit(url)
    first = socket.create_connection((u.hostname, u.port), timeout=TIMEOUT)
    b = body.encode()
    first.sendall(b"POST /api/generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n%s" % (len(b), b))
    first.recv(1)  # the stream has begun: the generation holds the model
    status, headers, data = request(url, "POST", b, {"Content-Type": "application/json"})
    first.close()
    if status != 429 or "Retry-After" not in headers or "error" not in json.loads(data):
        sys.exit(f"second generation: status {status}, headers {headers}, {data[:200]!r}")
    # The first one gone, the slot comes free.
    for _ in range(100):
        time.sleep(0.1)
        status, _, _ = request(url, "POST", b'{"n": 1}', {"Content-Type": "application/json"})
        if status == 200:
            return
    sys.exit("the generation slot never came free after the client left")


RAW = [
    b"GARBAGE\r\n\r\n",
    b"GET /\r\n\r\n",
    b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
    b"GET /api/info HTTP/1.1\r\n" + b"X-Long: " + b"a" * 200000 + b"\r\n\r\n",
    b"\x00\xff\xfe\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" * 50,
    b"POST /api/generate HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    b"POST /api/generate HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
    b"POST /api/generate HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"GET /api/neuron/up/0/%ff%00%2e%2e HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /api/info HTTP/1.1\r\nHost: x\r\n",  # never finished: the client hangs up
    b"POST /api/generate HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"n\":",  # body cut short
    b"GET " + b"/a" * 30000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
]


def cmd_raw(host, port):
    for i, req in enumerate(RAW):
        s = socket.create_connection((host, int(port)), timeout=TIMEOUT)
        try:
            s.sendall(req)
            s.shutdown(socket.SHUT_WR)
            reply = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                reply += chunk
        except OSError:
            pass  # a reset is a fine answer to junk
        s.close()
        status, _, _ = request(f"http://{host}:{port}/api/info")
        if status != 200:
            sys.exit(f"after malformed request {i} the server answers {status}")


def cmd_big(url, n, chunked):
    """A body over the limit, sent over a raw socket: the server may answer
    413 and close before it has all been sent, which http.client takes for
    a failure; the answer is what counts."""
    u = urllib.parse.urlsplit(url)
    s = socket.create_connection((u.hostname, u.port), timeout=TIMEOUT)
    head = b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" % u.path.encode()
    head += b"Transfer-Encoding: chunked\r\n\r\n" if chunked else b"Content-Length: %d\r\n\r\n" % n
    reply = b""
    try:
        s.sendall(head)
        block = b"a" * 65536
        for sent in range(0, n, len(block)):
            part = block[: min(len(block), n - sent)]
            s.sendall(b"%x\r\n%s\r\n" % (len(part), part) if chunked else part)
        if chunked:
            s.sendall(b"0\r\n\r\n")
    except OSError:
        pass
    try:
        while b"\r\n\r\n" not in reply:
            chunk = s.recv(65536)
            if not chunk:
                break
            reply += chunk
    except OSError:
        pass
    s.close()
    if not reply.startswith(b"HTTP/1.1 413"):
        sys.exit(f"a {n}-byte body: {reply[:100]!r}")


def cmd_slow(host, port, seconds):
    s = socket.create_connection((host, int(port)), timeout=seconds + 5)
    s.sendall(b"GET /api/info HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
    t0 = time.time()
    try:
        while s.recv(4096):
            pass
    except socket.timeout:
        sys.exit(f"a silent client still connected after {seconds + 5} s")
    except OSError:
        pass
    s.close()
    if time.time() - t0 > seconds:
        sys.exit(f"a silent client was cut off only after {time.time() - t0:.1f} s")


def cmd_load(url, n, conc):
    def one(_):
        t0 = time.perf_counter()
        status, _, _ = request(url)
        return status, time.perf_counter() - t0

    with concurrent.futures.ThreadPoolExecutor(conc) as ex:
        res = list(ex.map(one, range(n)))
    bad = [s for s, _ in res if s != 200]
    lat = sorted(t for _, t in res)
    p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000
    print(f"load: {n} requests, {conc} at a time: {n - len(bad)} answered 200; p50 {p(0.50):.2f} ms, p99 {p(0.99):.2f} ms")
    if bad:
        sys.exit(f"{len(bad)} requests not 200: {sorted(set(bad))}")


def main():
    a = sys.argv[1:]
    if a[0] == "get":
        status, _, data = request(a[1])
        print(status)
        sys.stdout.write(data.decode("utf-8", "replace"))
    elif a[0] == "post":
        body = open(a[2][1:], "rb").read() if a[2].startswith("@") else a[2].encode()
        status, _, data = request(a[1], "POST", body, {"Content-Type": "application/json"})
        print(status)
        sys.stdout.write(data.decode("utf-8", "replace"))
    elif a[0] == "same":
        status, _, data = request(a[1])
        got, want = json.loads(data), json.load(open(a[2]))
        if status != 200 or got != want:
            sys.exit(f"status {status}; API {json.dumps(got)[:300]}\n   CLI {json.dumps(want)[:300]}")
    elif a[0] == "postsame":
        status, _, data = request(a[1], "POST", a[2].encode(), {"Content-Type": "application/json"})
        got, want = json.loads(data), json.load(open(a[3]))
        if status != 200 or got != want:
            sys.exit(f"status {status}; API {json.dumps(got)[:300]}\n   CLI {json.dumps(want)[:300]}")
    elif a[0] == "stream":
        cmd_stream(a[1], a[2], a[3])
    elif a[0] == "busy":
        cmd_busy(a[1], a[2])
    elif a[0] == "big":
        cmd_big(a[1], int(a[2]), len(a) > 3)
    elif a[0] == "raw":
        cmd_raw(a[1], a[2])
    elif a[0] == "slow":
        cmd_slow(a[1], a[2], float(a[3]))
    elif a[0] == "load":
        cmd_load(a[1], int(a[2]), int(a[3]))


if __name__ == "__main__":
    main()
