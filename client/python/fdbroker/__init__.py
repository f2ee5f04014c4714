"""Python workers of the fdbroker broker: files and sockets asked of the broker, as Python objects.

A worker started by ``fdbroker run`` (or a client of ``fdbroker serve``) calls these functions instead
of :func:`open`, :func:`socket.create_connection` and the like. Each sends the request to the broker
over libfdbroker, the worker-side C library; the broker decides under the worker's policy profile and
hands back an already-open descriptor, which becomes an ordinary Python file or socket::

    import fdbroker

    with fdbroker.open("/etc/hostname") as f:
        print(f.read())
    db = fdbroker.connect("tcp:127.0.0.1:6379")    # a connected socket.socket
    web = fdbroker.listen("tcp:0.0.0.0:80")         # a listening one, though the worker is unprivileged

Errors are the usual :class:`OSError` subclasses with ``errno`` set: a request the policy does not
grant raises :class:`PermissionError` (EACCES, whether or not the file exists), a missing file
:class:`FileNotFoundError`, and with no broker reachable the call fails with ENOTCONN.

libfdbroker is loaded by its soname, ``libfdbroker.so.0``, from the loader's usual places; the
environment variable ``FDBROKER_LIBRARY`` names another file to load instead (a build tree's
library, say). See libfdbroker(3).
"""

from __future__ import annotations

import builtins
import ctypes
import os
import socket
from typing import IO, Any, Optional, Union

__all__ = ["open", "connect", "listen", "mkdir", "unlink", "rmdir", "rename", "LIBRARY"]

#: The library this module loads unless ``FDBROKER_LIBRARY`` names another.
LIBRARY = "libfdbroker.so.0"

StrOrBytesPath = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]


def _load() -> ctypes.CDLL:
    name = os.environ.get("FDBROKER_LIBRARY") or LIBRARY
    try:
        lib = ctypes.CDLL(name, use_errno=True)
    except OSError as e:
        raise ImportError(
            f"fdbroker: cannot load {name} ({e}); install libfdbroker (the fdbroker package), "
            "or set FDBROKER_LIBRARY to the path of libfdbroker.so",
            name="fdbroker",
        ) from e
    for fn, args in (
        ("fdbroker_open", [ctypes.c_char_p, ctypes.c_int, ctypes.c_uint]),
        ("fdbroker_connect", [ctypes.c_char_p]),
        ("fdbroker_listen", [ctypes.c_char_p, ctypes.c_int]),
        ("fdbroker_mkdir", [ctypes.c_char_p, ctypes.c_uint]),
        ("fdbroker_unlink", [ctypes.c_char_p]),
        ("fdbroker_rmdir", [ctypes.c_char_p]),
        ("fdbroker_rename", [ctypes.c_char_p, ctypes.c_char_p]),
    ):
        getattr(lib, fn).argtypes = args
        getattr(lib, fn).restype = ctypes.c_int
    return lib


_lib = _load()


def _check(result: int, *paths: Any) -> int:
    """``result`` if the call succeeded, else the OSError subclass its errno stands for."""
    if result >= 0:
        return result
    err = ctypes.get_errno()
    raise OSError(err, os.strerror(err), *paths)


def _flags(mode: str) -> int:
    """open(2) flags for a mode of builtins.open ('r', 'wb', 'a+', 'x', ...), ValueError if invalid."""
    kinds = [c for c in mode if c in "rwxa"]
    if (len(kinds) != 1 or len(set(mode)) != len(mode) or set(mode) - set("rwxab+t")
            or ("b" in mode and "t" in mode)):
        raise ValueError(f"invalid mode: {mode!r}")
    flags = {
        "r": 0,
        "w": os.O_CREAT | os.O_TRUNC,
        "x": os.O_CREAT | os.O_EXCL,
        "a": os.O_CREAT | os.O_APPEND,
    }[kinds[0]]
    if "+" in mode:
        flags |= os.O_RDWR
    elif kinds[0] != "r":
        flags |= os.O_WRONLY
    # Like the files builtins.open makes: not inherited by programs the worker runs.
    return flags | os.O_CLOEXEC


def open(  # noqa: A001 - deliberately the name of the builtin it stands for
    file: StrOrBytesPath,
    mode: str = "r",
    buffering: int = -1,
    encoding: Optional[str] = None,
    errors: Optional[str] = None,
    newline: Optional[str] = None,
) -> IO[Any]:
    """Open ``file`` through the broker and return a file object, as :func:`builtins.open` does.

    ``mode`` is one of the builtin's modes ('r', 'w', 'x', 'a', each with 'b' or 't' and '+'), and
    ``buffering``, ``encoding``, ``errors`` and ``newline`` mean what they mean there. The policy
    must grant what the mode needs: 'r' read, 'w' and 'a' write and create, 'x' create, '+' read
    and write. A new file is asked for with mode 0666, as the builtin asks.

    Raises :class:`PermissionError` when the policy does not grant it, and the errors the
    builtin raises otherwise (:class:`FileNotFoundError`, :class:`IsADirectoryError`, ...).
    """
    path = os.fsencode(file)
    fd = _check(_lib.fdbroker_open(path, _flags(mode), 0o666), file)
    try:
        f = builtins.open(fd, mode, buffering, encoding, errors, newline, closefd=True)
    except BaseException:
        os.close(fd)
        raise
    # The name the caller gave, not the descriptor's number (what repr() and tracebacks show).
    raw = getattr(f, "buffer", f)  # text -> buffered (or raw, unbuffered binary) -> raw
    raw = getattr(raw, "raw", raw)
    raw.name = os.fspath(file)
    return f


def connect(address: str) -> socket.socket:
    """A socket connected to ``address``: ``tcp:HOST:PORT``, ``udp:HOST:PORT`` (HOST an IPv4
    address or ``[IPv6]``), ``unix:/path`` or ``unix:@abstract``.

    The socket is blocking and not inherited by programs the worker runs. Raises
    :class:`PermissionError` when no connect rule grants ``address``, :class:`OSError` with
    EINVAL for an address not in that form, and the errors of connect(2) otherwise.
    """
    return socket.socket(fileno=_check(_lib.fdbroker_connect(address.encode()), address))


def listen(address: str, backlog: int = 128) -> socket.socket:
    """A socket bound to ``address`` (forms as for :func:`connect`) and listening with ``backlog``;
    for ``udp:`` a bound socket. The worker needs no privilege for a port below 1024.

    Raises :class:`PermissionError` when no listen rule grants ``address``.
    """
    return socket.socket(fileno=_check(_lib.fdbroker_listen(address.encode(), backlog), address))


def mkdir(path: StrOrBytesPath, mode: int = 0o777) -> None:
    """Like :func:`os.mkdir`, through the broker (the policy must grant create on ``path``)."""
    _check(_lib.fdbroker_mkdir(os.fsencode(path), mode), path)


def unlink(path: StrOrBytesPath) -> None:
    """Like :func:`os.unlink`, through the broker (create on ``path``)."""
    _check(_lib.fdbroker_unlink(os.fsencode(path)), path)


def rmdir(path: StrOrBytesPath) -> None:
    """Like :func:`os.rmdir`, through the broker (create on ``path``)."""
    _check(_lib.fdbroker_rmdir(os.fsencode(path)), path)


def rename(src: StrOrBytesPath, dst: StrOrBytesPath) -> None:
    """Like :func:`os.rename`, through the broker (create on both paths)."""
    _check(_lib.fdbroker_rename(os.fsencode(src), os.fsencode(dst)), src, None, dst)
