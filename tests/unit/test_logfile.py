"""Logging: its setup and live changes, and the RAM log file: rotation with gzip, bounded copies to
flash, the size cap."""

import gzip
import logging
import sys

import pytest

from burrow import config, logfile
from burrow.logfile import BASENAME, CURRENT_COPY, RamLogHandler


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def logger():
    lg = logging.getLogger("burrow.test_logfile")
    lg.propagate = False
    lg.setLevel(logging.INFO)
    yield lg
    for h in list(lg.handlers):
        lg.removeHandler(h)
        h.close()


def attach(lg, handler):
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    lg.addHandler(handler)
    return handler


def read_all_gz(paths):
    return "".join(gzip.decompress(p.read_bytes()).decode() for p in paths)


def test_lines_go_to_the_ram_file(tmp_path, logger):
    attach(logger, RamLogHandler(tmp_path / "ram"))
    logger.info("hello %s", "world")
    assert (tmp_path / "ram" / BASENAME).read_text() == "INFO hello world\n"


def test_rotates_by_size_and_gzips_keeping_n(tmp_path, logger):
    ram = tmp_path / "ram"
    h = attach(logger, RamLogHandler(ram, max_bytes=1000, keep=3))
    for i in range(200):  # ~20 bytes a line: ~4 KB, about 4 rotations... and more
        logger.info("line %05d %s", i, "x" * 10)
    h.wait()
    rotated = h.rotated()
    assert len(rotated) == 3
    assert [p.name for p in rotated] == sorted((p.name for p in rotated),
                                               key=lambda n: int(n.split(".")[2]))
    # No uncompressed leftovers; every kept file is valid gzip and ends on a line.
    assert sorted(p.name for p in ram.iterdir() if not p.name.endswith(".gz")) == [BASENAME]
    text = read_all_gz(rotated) + (ram / BASENAME).read_text()
    lines = text.splitlines()
    assert lines[-1] == "INFO line 00199 xxxxxxxxxx"
    # Consecutive: the newest rotations plus the live file lose nothing in between.
    numbers = [int(line.split()[2]) for line in lines]
    assert numbers == list(range(numbers[0], 200))
    assert (ram / BASENAME).stat().st_size < 1000


def test_keep_zero_just_drops_rotated_data(tmp_path, logger):
    h = attach(logger, RamLogHandler(tmp_path / "ram", max_bytes=500, keep=0))
    for i in range(100):
        logger.info("line %d", i)
    h.wait()
    assert h.rotated() == []
    assert sorted(p.name for p in (tmp_path / "ram").iterdir()) == [BASENAME]


def test_persists_at_most_every_interval(tmp_path, logger):
    clock = FakeClock()
    flash = tmp_path / "flash"
    h = attach(logger, RamLogHandler(tmp_path / "ram", persist_dir=flash,
                                     persist_interval=3600, clock=clock))
    logger.info("first")
    h.wait()
    assert not flash.exists()  # nothing before the interval has passed
    clock.now += 3599
    logger.info("second")
    h.wait()
    assert not flash.exists()
    clock.now += 2
    logger.info("third")
    h.wait()
    sessions = list(flash.iterdir())
    assert len(sessions) == 1
    current = sessions[0] / CURRENT_COPY
    assert gzip.decompress(current.read_bytes()).decode().splitlines() == [
        "INFO first", "INFO second", "INFO third"]
    before = current.stat().st_mtime_ns
    clock.now += 10
    logger.info("fourth")  # within the interval again: no new copy
    h.wait()
    assert current.stat().st_mtime_ns == before


def test_close_persists_the_tail(tmp_path, logger):
    flash = tmp_path / "flash"
    h = attach(logger, RamLogHandler(tmp_path / "ram", max_bytes=400, keep=5,
                                     persist_dir=flash, persist_interval=3600))
    for i in range(40):
        logger.info("event %02d", i)
    logger.removeHandler(h)
    h.close()
    h.close()  # idempotent
    (session,) = flash.iterdir()
    rotated = sorted((p for p in session.iterdir() if p.name != CURRENT_COPY),
                     key=lambda p: int(p.name.split(".")[2]))
    text = read_all_gz(rotated) + read_all_gz([session / CURRENT_COPY])
    assert [int(line.split()[2]) for line in text.splitlines()] == list(range(40))
    assert not list(session.glob("*.tmp"))


def test_rotated_files_are_copied_once(tmp_path, logger):
    flash = tmp_path / "flash"
    h = attach(logger, RamLogHandler(tmp_path / "ram", max_bytes=300, keep=10,
                                     persist_dir=flash))
    for i in range(30):
        logger.info("a %02d", i)
    h.persist_now()
    (session,) = flash.iterdir()
    first = {p.name: p.stat().st_mtime_ns for p in session.iterdir() if p.name != CURRENT_COPY}
    assert first
    for i in range(30):
        logger.info("b %02d", i)
    h.persist_now()
    second = {p.name: p.stat().st_mtime_ns for p in session.iterdir() if p.name != CURRENT_COPY}
    assert {k: second[k] for k in first} == first  # untouched
    assert len(second) > len(first)


def test_persisted_total_is_capped_oldest_first(tmp_path, logger):
    flash = tmp_path / "flash"
    # An older start's logs, then this one's.
    old = flash / "20200101T000000Z"
    old.mkdir(parents=True)
    (old / f"{BASENAME}.1.gz").write_bytes(b"x" * 40_000)
    (old / CURRENT_COPY).write_bytes(b"x" * 40_000)
    h = attach(logger, RamLogHandler(tmp_path / "ram", max_bytes=20_000, keep=10,
                                     persist_dir=flash, persist_max_bytes=70_000))
    logger.info("now")
    h.persist_now()
    total = sum(p.stat().st_size for p in flash.rglob("*") if p.is_file())
    assert total <= 70_000
    assert not (old / f"{BASENAME}.1.gz").exists()  # the oldest went first
    assert (old / CURRENT_COPY).exists()
    assert (flash / h.session / CURRENT_COPY).exists()
    # Once everything of an old start is gone, its folder goes too.
    h.persist_max_bytes = 1000
    h.persist_now()
    assert not old.exists()


def test_restart_continues_serials(tmp_path, logger):
    ram = tmp_path / "ram"
    h = attach(logger, RamLogHandler(ram, max_bytes=200, keep=10))
    for i in range(60):
        logger.info("x %d", i)
    h.wait()
    top = max(int(p.name.split(".")[2]) for p in h.rotated())
    logger.removeHandler(h)
    h.close()
    h2 = attach(logger, RamLogHandler(ram, max_bytes=200, keep=10))
    for i in range(60):
        logger.info("y %d", i)
    h2.wait()
    assert max(int(p.name.split(".")[2]) for p in h2.rotated()) > top


def test_handler_from_config(tmp_path):
    assert logfile.handler_from_config(config.load(environ={})) is None
    cfg = config.load(environ={
        "BURROW__LOGGING__FILE_DIR": str(tmp_path / "ram"),
        "BURROW__LOGGING__FILE_MAX_BYTES": "65536",
        "BURROW__LOGGING__FILE_KEEP": "2",
        "BURROW__LOGGING__FILE_PERSIST_DIR": str(tmp_path / "flash"),
        "BURROW__LOGGING__FILE_PERSIST_INTERVAL": "15",
    })
    h = logfile.handler_from_config(cfg)
    try:
        assert h.max_bytes == 65536 and h.keep == 2
        assert h.persist_interval == 15 * 60
        assert h.persist_dir == tmp_path / "flash"
    finally:
        h.close()


def test_unwritable_dir_disables_the_file_log(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    cfg = config.load(environ={"BURROW__LOGGING__FILE_DIR": str(blocker / "sub")})
    assert logfile.handler_from_config(cfg) is None


def test_setup_then_a_live_change_keeps_the_handlers_and_changes_level_format_and_stream(tmp_path):
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        logfile.setup_logging(config.load(environ={"BURROW__LOGGING__FILE_DIR": str(tmp_path / "ram")}))
        stream, ram = root.handlers
        assert type(stream) is logging.StreamHandler and isinstance(ram, RamLogHandler)
        assert root.level == logging.INFO and not isinstance(stream.formatter, logfile.JsonFormatter)
        logfile.apply_logging(config.load(environ={"BURROW__LOGGING__LEVEL": "warning",
                                                   "BURROW__LOGGING__FORMAT": "json",
                                                   "BURROW__LOGGING__OUTPUT": "stdout"}))
        assert root.handlers == [stream, ram] and root.level == logging.WARNING  # the file log keeps its file
        assert all(isinstance(h.formatter, logfile.JsonFormatter) for h in (stream, ram))
        assert stream.stream is sys.stdout
        ram.close()
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
