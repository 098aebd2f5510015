"""The manifest and checksum file beside the image (image-build/manifest.py) describe this very
image: its sha256, its sizes, and every Debian package and Python distribution on it."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_manifest_describes_the_image(image_xz, raw_image):
    name = image_xz.name.removesuffix(".img.xz")
    text = (image_xz.parent / f"{name}.manifest.txt").read_text()
    fields = dict(re.findall(r"^(\w+): (.*)$", text, re.M))
    digest = hashlib.sha256(image_xz.read_bytes()).hexdigest()
    assert fields["sha256"] == digest and int(fields["compressed_bytes"]) == image_xz.stat().st_size
    assert int(fields["raw_bytes"]) == raw_image.stat().st_size
    assert (image_xz.parent / f"{image_xz.name}.sha256").read_text().split() == [digest, image_xz.name]
    packages = {p: v for p, v, _ in re.findall(r"^([a-z0-9][a-z0-9+.-]+) (\S+) (arm64|all)$", text, re.M)}
    for needed in ("linux-image-arm64", "raspi-firmware", "systemd", "python3", "avahi-daemon",
                   "unattended-upgrades", "openssh-server", "wpasupplicant"):
        assert needed in packages, needed
    assert int(re.search(r"## Debian packages \((\d+)\)", text).group(1)) == len(packages)
    wheels = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)$", text, re.M))
    version = re.search(r'^__version__ = "(.+)"$', (REPO / "firmware/burrow/__init__.py").read_text(), re.M)
    assert wheels.get("burrow") == version.group(1) and name == f"burrow-{version.group(1)}-rpi-arm64"
    for dist in ("uvloop", "microdot", "dnslib", "psutil", "pyroute2", "gpiozero", "ujson"):
        assert dist in wheels, dist
