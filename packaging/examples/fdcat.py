#!/usr/bin/python3
"""fdcat.py: fdcat.c as a Python worker. Prints the first line of each FILE, read through the broker,
or why it was refused, and exits 1 if any was.

    fdbroker run --policy demo.toml -- python3 fdcat.py /etc/debian_version /etc/shadow
"""
import errno
import sys

import fdbroker

status = 0
for path in sys.argv[1:]:
    try:
        with fdbroker.open(path) as f:
            print(f"{path}: {f.readline().rstrip(chr(10))}")
    except OSError as e:  # PermissionError where the policy refuses, FileNotFoundError, ...
        print(f"{path}: {e.strerror} ({errno.errorcode[e.errno]})")
        status = 1
sys.exit(status)
