"""Board files load and validate; detection from a fake device tree."""

from pathlib import Path

import pytest

from burrow.board import boards

REPO_BOARD_DIR = Path(__file__).resolve().parents[3] / "board"
EXPECTED = {"rpi-zero-2-w", "rpi-3", "rpi-4", "rpi-5", "generic"}


def fake_root(tmp_path: Path, model: bytes | None) -> Path:
    if model is not None:
        dt = tmp_path / "proc/device-tree"
        dt.mkdir(parents=True)
        (dt / "model").write_bytes(model)
    return tmp_path


def test_default_dir_is_the_repo_board_dir(monkeypatch):
    monkeypatch.delenv("BURROW_BOARD_DIR", raising=False)
    assert boards.default_board_dir().resolve() == REPO_BOARD_DIR


def test_env_overrides_board_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("BURROW_BOARD_DIR", str(tmp_path))
    assert boards.default_board_dir() == tmp_path


def test_every_board_file_loads_and_validates():
    loaded = boards.load_all(REPO_BOARD_DIR)
    assert set(loaded) == EXPECTED
    for name, board in loaded.items():
        assert board.name == name
        assert board.description
        assert all(isinstance(line, str) for line in board.config_txt)
        for led in board.onboard_leds:
            assert led.names and all(led.names)
        if board.button is not None:
            assert board.gpio


@pytest.mark.parametrize("name", sorted(EXPECTED - {"generic"}))
def test_pi_boards_give_burrow_the_act_led(name):
    board = boards.load(name, REPO_BOARD_DIR)
    act = board.status_led()
    assert act is not None and act.key == "act"
    # Current and pre-6.1 kernel names.
    assert act.names == ("ACT", "led0")
    assert "dtparam=act_led_trigger=none" in board.config_txt
    assert board.gpio and board.model_match


def test_zero_2_w_is_active_low_and_has_no_pwr_led():
    board = boards.load("rpi-zero-2-w", REPO_BOARD_DIR)
    assert "dtparam=act_led_activelow=on" in board.config_txt
    assert [led.key for led in board.onboard_leds] == ["act"]


def test_generic_has_nothing_to_drive():
    board = boards.load("generic", REPO_BOARD_DIR)
    assert not board.gpio and board.button is None
    assert board.onboard_leds == () and board.external_leds.kind == "none"
    assert board.model_match == ()


@pytest.mark.parametrize("model,name", [
    (b"Raspberry Pi Zero 2 W Rev 1.0\x00", "rpi-zero-2-w"),
    (b"Raspberry Pi 3 Model B Rev 1.2\x00", "rpi-3"),
    (b"Raspberry Pi 3 Model B Plus Rev 1.3\x00", "rpi-3"),
    (b"Raspberry Pi 4 Model B Rev 1.4\x00", "rpi-4"),
    (b"Raspberry Pi 4 Model B Rev 1.5\x00", "rpi-4"),
    (b"Raspberry Pi 5 Model B Rev 1.0\x00", "rpi-5"),
    (b"Raspberry Pi 5 Model B Rev 1.0", "rpi-5"),          # no NUL
    (b"Raspberry Pi 400 Rev 1.0\x00", "generic"),
    (b"Raspberry Pi Model B Rev 2\x00", "generic"),         # Pi 1
    (b"QEMU Virtual Machine\x00", "generic"),
    (b"", "generic"),
    (None, "generic"),                                      # no device tree (x86)
])
def test_detect(tmp_path, model, name):
    root = fake_root(tmp_path, model)
    assert boards.detect(root, REPO_BOARD_DIR).name == name


def test_read_model_strips_nul_and_whitespace(tmp_path):
    root = fake_root(tmp_path, b"Raspberry Pi 4 Model B Rev 1.4\x00garbage")
    assert boards.read_model(root) == "Raspberry Pi 4 Model B Rev 1.4"
    assert boards.read_model(tmp_path / "nowhere") is None


def test_longest_match_wins(tmp_path):
    d = tmp_path / "b"
    d.mkdir()
    base = 'description = "x"\ngpio = false\nconfig_txt = []\n'
    (d / "generic.toml").write_text('name = "generic"\nmodel_match = []\n' + base)
    (d / "short.toml").write_text('name = "short"\nmodel_match = ["Pi 3"]\n' + base)
    (d / "long.toml").write_text('name = "long"\nmodel_match = ["Pi 3 Model B Plus"]\n' + base)
    root = fake_root(tmp_path / "root", b"Raspberry Pi 3 Model B Plus Rev 1.3\x00")
    assert boards.detect(root, d).name == "long"


GOOD = '''
name = "t"
description = "test"
model_match = ["T"]
gpio = true
config_txt = []
[onboard_leds.act]
names = ["ACT"]
role = "status"
[external_leds]
kind = "rgy"
pins = { red = 17, amber = 27, green = 22 }
active_high = false
[button]
pin = 3
'''


def write_board(tmp_path, text, name="t"):
    (tmp_path / f"{name}.toml").write_text(text)
    return tmp_path


def test_full_board_parses(tmp_path):
    board = boards.load("t", write_board(tmp_path, GOOD))
    assert board.external_leds == boards.ExternalLeds("rgy", {"red": 17, "amber": 27, "green": 22},
                                                      active_high=False)
    assert board.button == boards.ButtonSpec(pin=3, pull_up=True)
    assert board.status_led().names == ("ACT",)


@pytest.mark.parametrize("old,new,key", [
    ('kind = "rgy"', 'kind = "disco"', "external_leds.kind"),
    ("amber = 27, ", "", "external_leds.pins"),
    ("pin = 3", "pin = true", "button.pin"),
    ("pin = 3", 'pin = "3"', "button.pin"),
    ('role = "status"', 'role = "party"', "onboard_leds.act.role"),
    ('names = ["ACT"]', "names = []", "onboard_leds.act.names"),
    ('description = "test"', "", "description"),
    ("gpio = true", "gpio = false", "external_leds.kind"),
    ('name = "t"', 'name = "u"', "name"),
    ("config_txt = []", "config_txt = [1]", "config_txt"),
])
def test_bad_files_name_the_key(tmp_path, old, new, key):
    text = GOOD.replace(old, new, 1)
    assert text != GOOD
    with pytest.raises(boards.BoardError, match=key.replace(".", r"\.")):
        boards.load("t", write_board(tmp_path, text))


def test_toml_syntax_error_and_missing_file(tmp_path):
    with pytest.raises(boards.BoardError, match="t.toml"):
        boards.load("t", write_board(tmp_path, "name = "))
    with pytest.raises(boards.BoardError, match="no such board"):
        boards.load("nope", tmp_path)
    with pytest.raises(boards.BoardError):
        boards.load("../etc/passwd", tmp_path)
