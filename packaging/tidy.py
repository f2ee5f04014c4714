#!/usr/bin/env python3
"""clang-tidy over the files of a compilation database, remembering which were clean.

usage: tidy.py BUILD_DIR CACHE_DIR FOLDER...

Every translation unit under one of the FOLDERs (relative to the current directory, the checkout) is
checked with the project's .clang-tidy, diagnostics in the FOLDERs' headers included. A file found
clean is remembered in CACHE_DIR under a key that covers everything its result depends on: its
preprocessed text (every header it includes, with the checkout's own path taken out so that another
clone finds the same key), its flags, .clang-tidy, and the installed packages (the compiler, clang-tidy
and every library header come from them). Such a file is not checked again until one of those changes.
A finding fails the run; nothing is remembered for a file with findings.
"""

import concurrent.futures
import hashlib
import json
import os
import re
import shlex
import subprocess
import sys


def system_key() -> bytes:
    packages = subprocess.run(["dpkg-query", "-W", "-f=${Package} ${Version}\\n"],
                              capture_output=True, check=True).stdout
    with open(".clang-tidy", "rb") as config:
        return hashlib.sha256(packages + config.read()).digest()


def preprocess_command(entry: dict) -> list[str]:
    args = entry["arguments"] if "arguments" in entry else shlex.split(entry["command"])
    out = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg == "-o":
            skip = True
        elif arg != "-c":
            out.append(arg)
    return out + ["-E"]


def file_key(entry: dict, checkout: str, base: bytes) -> str:
    command = preprocess_command(entry)
    text = subprocess.run(command, cwd=entry["directory"], capture_output=True, check=True).stdout
    digest = hashlib.sha256(base)
    digest.update(" ".join(command).replace(checkout, "@").encode())
    digest.update(text.replace(checkout.encode(), b"@"))
    return digest.hexdigest()


def check(entry: dict, build: str, header_filter: str, checkout: str, base: bytes, cache: str):
    key = file_key(entry, checkout, base)
    mark = os.path.join(cache, key)
    if os.path.exists(mark):
        return entry["file"], True, ""
    result = subprocess.run(["clang-tidy", "-p", build, "-quiet", f"-header-filter={header_filter}",
                             entry["file"]], capture_output=True, text=True)
    findings = re.search(r"(warning|error):", result.stdout) is not None
    clean = result.returncode == 0 and not findings
    if clean:
        with open(mark, "w", encoding="ascii"):
            pass
    return entry["file"], clean, result.stdout + result.stderr


def main() -> int:
    build, cache, *folders = sys.argv[1:]
    checkout = os.getcwd()
    os.makedirs(cache, exist_ok=True)
    pattern = f"^{re.escape(checkout)}/({'|'.join(folders)})/"
    with open(os.path.join(build, "compile_commands.json"), encoding="utf-8") as db:
        entries = [e for e in json.load(db) if re.match(pattern, e["file"])]
    base = system_key()
    failed = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        jobs = [pool.submit(check, e, build, pattern, checkout, base, cache) for e in entries]
        for job in concurrent.futures.as_completed(jobs):
            name, clean, output = job.result()
            if not clean:
                failed += 1
                print(f"clang-tidy: {name}\n{output}", flush=True)
    print(f"clang-tidy: {len(entries)} files, {failed} with findings")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
