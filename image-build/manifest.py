#!/usr/bin/env python3
"""The manifest beside an image: what it is (checksums, sizes, disk identifier, build time) and
every Debian package and Python distribution on it, with versions.

    python3 image-build/manifest.py --image X.img.xz --raw X.img --version V --disk-id HEX \
        --packages packages.tsv --wheels wheels.txt --build-seconds N > X.manifest.txt

packages.tsv is ``dpkg-query -W -f='${Package}\\t${Version}\\t${Architecture}\\n'`` from the image's
root; wheels.txt is ``name==version`` per line from the image's /opt/burrow venv.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_packages(text: str) -> list[tuple[str, str, str]]:
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 3 or not all(fields):
            raise ValueError(f"packages line {n}: expected package<TAB>version<TAB>arch, got {line!r}")
        rows.append((fields[0], fields[1], fields[2]))
    return rows


def read_wheels(text: str) -> list[tuple[str, str]]:
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        name, sep, version = line.strip().partition("==")
        if not sep or not name or not version:
            raise ValueError(f"wheels line {n}: expected name==version, got {line!r}")
        rows.append((name, version))
    return rows


def manifest(*, image: str, raw: str, version: str, disk_id: str, packages: list[tuple[str, str, str]],
             wheels: list[tuple[str, str]], build_seconds: int, built_at: float | None = None) -> str:
    out = [f"# Burrow {version} SD-card image (Raspberry Pi 3, 4, 5, Zero 2 W; arm64)",
           f"image: {os.path.basename(image)}",
           f"sha256: {sha256(image)}",
           f"compressed_bytes: {os.path.getsize(image)}",
           f"raw_sha256: {sha256(raw)}",
           f"raw_bytes: {os.path.getsize(raw)}",
           f"disk_identifier: 0x{disk_id}",
           f"built: {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(built_at))}",
           f"build_seconds: {build_seconds}",
           "",
           f"## Debian packages ({len(packages)}): package version architecture"]
    out += [f"{p} {v} {a}" for p, v, a in sorted(packages)]
    out += ["", f"## Python distributions in /opt/burrow ({len(wheels)}): name==version"]
    out += [f"{n}=={v}" for n, v in sorted(wheels, key=lambda r: r[0].lower())]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for flag in ("--image", "--raw", "--version", "--disk-id", "--packages", "--wheels"):
        ap.add_argument(flag, required=True)
    ap.add_argument("--build-seconds", type=int, required=True)
    args = ap.parse_args(argv)
    try:
        with open(args.packages) as f:
            packages = read_packages(f.read())
        with open(args.wheels) as f:
            wheels = read_wheels(f.read())
    except (OSError, ValueError) as e:
        print(f"manifest: {e}", file=sys.stderr)
        return 1
    if not packages or not wheels:
        print("manifest: no packages or no wheels listed: refusing to write an empty manifest", file=sys.stderr)
        return 1
    sys.stdout.write(manifest(image=args.image, raw=args.raw, version=args.version, disk_id=args.disk_id,
                              packages=packages, wheels=wheels, build_seconds=args.build_seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
