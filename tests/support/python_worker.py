"""The Python worker of tests/integration/python_test.cpp: fdbroker's Python module against a real
broker, one line per request (what came back, or the exception's class and errno).

    python_worker.py DIR
"""
import sys
from typing import Any, Callable

import fdbroker

d = sys.argv[1]


def attempt(what: str, request: Callable[[], Any]) -> None:
    try:
        print(what, request())
    except OSError as e:
        print(what, type(e).__name__, e.errno)


def text() -> list[str]:
    with fdbroker.open(f"{d}/out/new.txt", "w", encoding="utf-8") as f:
        f.write("één\n")
    with fdbroker.open(f"{d}/out/new.txt", "a", encoding="utf-8") as f:
        f.write("twee\n")
    with fdbroker.open(f"{d}/out/new.txt", "r+", encoding="utf-8") as f:
        lines = f.read().split()
        f.write("drie\n")
        return lines + [f.name]


def exclusive() -> bytes:
    with fdbroker.open(f"{d}/out/new.bin", "xb") as f:
        f.write(b"\x00\x01")
    with fdbroker.open(f"{d}/out/new.bin", "rb", buffering=0) as f:
        return f.read()


def sockets() -> list[str]:
    with fdbroker.listen(f"unix:{d}/out/sock") as server, fdbroker.connect(f"unix:{d}/out/sock") as client:
        peer, _ = server.accept()
        client.sendall(b"ping")
        return [type(server).__name__, server.family.name, type(client).__name__, peer.recv(4).decode()]


attempt("read", lambda: fdbroker.open(f"{d}/pub/hello").read())
attempt("read-bytes", lambda: fdbroker.open(f"{d}/pub/hello", "rb").read())
attempt("denied", lambda: fdbroker.open(f"{d}/secret/key"))
attempt("denied-absent", lambda: fdbroker.open(f"{d}/secret/absent"))
attempt("absent", lambda: fdbroker.open(f"{d}/pub/absent"))
attempt("write-denied", lambda: fdbroker.open(f"{d}/pub/hello", "a"))
attempt("text", text)
attempt("after", lambda: fdbroker.open(f"{d}/out/new.txt", encoding="utf-8").read().split())
attempt("exclusive", exclusive)
attempt("exists", lambda: fdbroker.open(f"{d}/out/new.bin", "x"))
attempt("sockets", sockets)
attempt("connect-denied", lambda: fdbroker.connect("tcp:127.0.0.1:9"))
attempt("bad-address", lambda: fdbroker.connect("tcp:localhost:9"))
try:
    fdbroker.open(f"{d}/pub/hello", "rw")
except ValueError as e:
    print("bad-mode", e)
