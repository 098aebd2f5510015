"""Board descriptions: which LEDs, pins and boot config a board has.

Each supported board is one TOML file in the board directory: ``board/`` at
the top of the repository, reached as ``burrow/board/files`` (a link to it in
the checkout, a copy in a built wheel, so every install has them). This
module loads and validates those files and picks the one that matches the
running hardware::

    from burrow.board import boards

    board = boards.detect()                  # reads /proc/device-tree/model
    board = boards.detect(root=tmp_path)     # same, against a fake tree
    board = boards.load("rpi-4")             # by name

:func:`detect` never fails on an unknown machine: it falls back to the
``generic`` board (no GPIO, no LEDs). A malformed board file raises
:class:`BoardError` naming the file and key.
"""

from __future__ import annotations

import logging
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

GENERIC = "generic"
# Package data (pyproject.toml): a link to the repository's board/ in a checkout, the files
# themselves once built into a wheel. Not resolved, so error messages name the package path.
BOARD_DIR = Path(__file__).resolve().parent / "files"
EXTERNAL_KINDS = ("none", "single", "rgy", "rgb")
# Channel names each external kind needs in its ``pins`` table.
EXTERNAL_PINS = {
    "none": (),
    "single": ("led",),
    "rgy": ("red", "amber", "green"),
    "rgb": ("red", "green", "blue"),
}
LED_ROLES = ("status", "none")


class BoardError(ValueError):
    """A board file is missing or malformed; the message names file and key."""


@dataclass(frozen=True)
class OnboardLed:
    """An LED the kernel exposes under ``/sys/class/leds``.

    ``names`` are alternative sysfs names, preferred first (kernels renamed
    ``led0``/``led1`` to ``ACT``/``PWR``). ``role`` is ``"status"`` when
    Burrow renders patterns on it, ``"none"`` when it is left alone.
    """

    key: str
    names: tuple[str, ...]
    colour: str
    trigger: bool
    role: str


@dataclass(frozen=True)
class ExternalLeds:
    """LEDs wired to GPIO pins (BCM numbering); ``pins`` maps channel → pin."""

    kind: str
    pins: dict[str, int] = field(default_factory=dict)
    active_high: bool = True


@dataclass(frozen=True)
class ButtonSpec:
    """A push button on a GPIO pin (BCM numbering)."""

    pin: int
    pull_up: bool = True


@dataclass(frozen=True)
class Board:
    """One board description, as loaded from its TOML file."""

    name: str
    description: str
    model_match: tuple[str, ...]
    gpio: bool
    config_txt: tuple[str, ...]
    onboard_leds: tuple[OnboardLed, ...]
    external_leds: ExternalLeds
    button: ButtonSpec | None
    path: Path | None = None

    def status_led(self) -> OnboardLed | None:
        """The onboard LED Burrow may drive for status, if the board has one."""
        for led in self.onboard_leds:
            if led.role == "status":
                return led
        return None


def default_board_dir() -> Path:
    """The board directory: the package's ``files`` (see :data:`BOARD_DIR`);
    ``BURROW_BOARD_DIR`` in the environment overrides it."""
    env = os.environ.get("BURROW_BOARD_DIR")
    return Path(env) if env else BOARD_DIR


def read_model(root: str | os.PathLike = "/") -> str | None:
    """The device-tree model string under ROOT, or None when there is none.

    The kernel stores it NUL-terminated; the NUL and surrounding whitespace
    are stripped.
    """
    path = Path(root) / "proc/device-tree/model"
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    text = raw.split(b"\0", 1)[0].decode("utf-8", "replace").strip()
    return text or None


def load(name: str, board_dir: str | os.PathLike | None = None) -> Board:
    """Load and validate the board called ``name`` (file ``<name>.toml``)."""
    directory = Path(board_dir) if board_dir is not None else default_board_dir()
    if not name or "/" in name or name.startswith("."):
        raise BoardError(f"invalid board name {name!r}")
    path = directory / f"{name}.toml"
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise BoardError(f"{path}: no such board file") from None
    except tomllib.TOMLDecodeError as exc:
        raise BoardError(f"{path}: {exc}") from None
    board = _parse(data, path)
    if board.name != name:
        raise BoardError(f"{path}: name: {board.name!r} does not match file name")
    return board


def load_all(board_dir: str | os.PathLike | None = None) -> dict[str, Board]:
    """Every board in the directory, by name (sorted). Raises on any bad file."""
    directory = Path(board_dir) if board_dir is not None else default_board_dir()
    return {p.stem: load(p.stem, directory) for p in sorted(directory.glob("*.toml"))}


def match(model: str | None, boards: dict[str, Board]) -> Board | None:
    """The board whose ``model_match`` best fits ``model``.

    The longest matching substring wins, so a specific string ("Raspberry Pi
    3 Model B Plus") beats a general one; ties go to the first name in sort
    order, which keeps detection deterministic.
    """
    if not model:
        return None
    best: tuple[int, str] | None = None
    for name in sorted(boards):
        for needle in boards[name].model_match:
            if needle in model and (best is None or len(needle) > best[0]):
                best = (len(needle), name)
    return boards[best[1]] if best else None


def detect(
    root: str | os.PathLike = "/", board_dir: str | os.PathLike | None = None
) -> Board:
    """The board for the machine under ROOT, falling back to ``generic``."""
    model = read_model(root)
    found = match(model, load_all(board_dir))
    if found is None:
        log.info("no board file matches model %r; using %s", model, GENERIC)
        return load(GENERIC, board_dir)
    log.info("board %s detected from model %r", found.name, model)
    return found


# --- validation ---------------------------------------------------------------


def _want(data: dict, key: str, kind: type | tuple, where: str, default=...):
    if key not in data:
        if default is ...:
            raise BoardError(f"{where}{key}: required")
        return default
    value = data[key]
    # bool is an int subclass; a pin of `true` is a typo, not pin 1.
    if isinstance(value, bool) and kind is int:
        raise BoardError(f"{where}{key}: expected int, got bool")
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise BoardError(f"{where}{key}: expected {names}, got {type(value).__name__}")
    return value


def _str_list(data: dict, key: str, where: str) -> tuple[str, ...]:
    values = _want(data, key, list, where)
    if not all(isinstance(v, str) for v in values):
        raise BoardError(f"{where}{key}: expected a list of strings")
    return tuple(values)


def _parse(data: dict, path: Path) -> Board:
    where = f"{path}: "
    name = _want(data, "name", str, where)
    description = _want(data, "description", str, where)
    model_match = _str_list(data, "model_match", where)
    gpio = _want(data, "gpio", bool, where)
    config_txt = _str_list(data, "config_txt", where)

    leds = []
    for key, spec in _want(data, "onboard_leds", dict, where, {}).items():
        lw = f"{where}onboard_leds.{key}."
        if not isinstance(spec, dict):
            raise BoardError(f"{lw[:-1]}: expected a table")
        names = _str_list(spec, "names", lw)
        if not names:
            raise BoardError(f"{lw}names: needs at least one sysfs name")
        role = _want(spec, "role", str, lw, "none")
        if role not in LED_ROLES:
            raise BoardError(f"{lw}role: {role!r} not one of {LED_ROLES}")
        leds.append(
            OnboardLed(
                key=key,
                names=names,
                colour=_want(spec, "colour", str, lw, ""),
                trigger=_want(spec, "trigger", bool, lw, True),
                role=role,
            )
        )
    if sum(led.role == "status" for led in leds) > 1:
        raise BoardError(f"{where}onboard_leds: at most one LED may have role 'status'")

    ext = _want(data, "external_leds", dict, where, {"kind": "none"})
    ew = f"{where}external_leds."
    kind = _want(ext, "kind", str, ew, "none")
    if kind not in EXTERNAL_KINDS:
        raise BoardError(f"{ew}kind: {kind!r} not one of {EXTERNAL_KINDS}")
    pins = _want(ext, "pins", dict, ew, {})
    needed = EXTERNAL_PINS[kind]
    if set(pins) != set(needed):
        raise BoardError(f"{ew}pins: kind {kind!r} needs exactly {list(needed)}")
    for channel in needed:
        _want(pins, channel, int, f"{ew}pins.")
    if needed and not gpio:
        raise BoardError(f"{ew}kind: {kind!r} needs gpio = true")
    external = ExternalLeds(
        kind=kind,
        pins={c: pins[c] for c in needed},
        active_high=_want(ext, "active_high", bool, ew, True),
    )

    button = None
    if "button" in data:
        bt = _want(data, "button", dict, where)
        bw = f"{where}button."
        if not gpio:
            raise BoardError(f"{bw[:-1]}: needs gpio = true")
        button = ButtonSpec(
            pin=_want(bt, "pin", int, bw), pull_up=_want(bt, "pull_up", bool, bw, True)
        )

    return Board(
        name=name,
        description=description,
        model_match=model_match,
        gpio=gpio,
        config_txt=config_txt,
        onboard_leds=tuple(leds),
        external_leds=external,
        button=button,
        path=path,
    )
