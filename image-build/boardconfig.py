#!/usr/bin/env python3
"""The lines the image adds to the Pi's config.txt, assembled from the board files.

Each board file (board/*.toml) lists ``config_txt`` lines for its model. Debian's raspi-firmware
writes config.txt at every kernel update and appends /etc/default/raspi-firmware-custom; this
prints that file's text: each board's lines under the config.txt filter section that selects its
model, then ``[all]`` so that whatever follows applies to every board again.

    python3 image-build/boardconfig.py board/ > raspi-firmware-custom
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

# config.txt's model filters (https://www.raspberrypi.com/documentation/computers/config_txt.html,
# "Model filters"). A board file with config_txt lines must be named here.
FILTERS = {"rpi-3": "pi3", "rpi-4": "pi4", "rpi-5": "pi5", "rpi-zero-2-w": "pi02"}


class BoardConfigError(ValueError):
    pass


def read_boards(board_dir: Path) -> dict[str, list[str]]:
    """board name → its config_txt lines, for every board file in the folder."""
    out: dict[str, list[str]] = {}
    for path in sorted(board_dir.glob("*.toml")):
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as e:
            raise BoardConfigError(f"{path}: {e}") from None
        lines = data.get("config_txt", [])
        if not isinstance(lines, list) or not all(isinstance(x, str) for x in lines):
            raise BoardConfigError(f"{path}: config_txt must be a list of strings")
        out[path.stem] = lines
    return out


def config_txt(boards: dict[str, list[str]]) -> str:
    """The text for /etc/default/raspi-firmware-custom."""
    parts = ["# Burrow: the board files' config.txt lines (image-build/boardconfig.py)."]
    for name, lines in boards.items():
        if not lines:
            continue
        section = FILTERS.get(name)
        if section is None:
            raise BoardConfigError(f"board {name!r} has config_txt lines but no config.txt model filter "
                                   f"(add it to FILTERS in {Path(__file__).name})")
        for line in lines:
            text = line.strip()
            if not text or "\n" in line or text.startswith("["):
                raise BoardConfigError(f"board {name!r}: config_txt line {line!r} is not one setting")
        parts.append(f"[{section}]")
        parts.extend(line.strip() for line in lines)
    parts.append("[all]")
    return "\n".join(parts) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {argv[0]} BOARD_DIR", file=sys.stderr)
        return 2
    try:
        sys.stdout.write(config_txt(read_boards(Path(argv[1]))))
    except BoardConfigError as e:
        print(f"boardconfig: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
