"""Factory reset: settings, users and the query log are wiped, and first-run setup returns."""

import os

import uvloop

from burrow import config as config_mod
from burrow.app import App

from tests.support.api_client import admin_token
from tests.support.burrow_proc import BurrowProcess


def test_factory_reset_wipes_and_first_run_setup_returns(tmp_path, upstream):
    b = BurrowProcess(tmp_path, [upstream.address])
    with b:
        admin_token(b)  # creates the first admin
        assert b.http("POST", "/api/auth/setup", {"username": "x", "password": "Another-Pass-2024!"})[0] == 409
        b.query("before-reset.example.test")
    # The button's confirmed 15-second hold calls App.factory_reset() (the button and its
    # mapping are tested with mock pins in tests/unit/board/test_appliance.py); call it in-process
    # on the same data dir.
    cfg = config_mod.load(b.config_path, environ={})

    async def press():
        app = App(cfg)
        await app.start()
        app.factory_reset()
        await app._stopping.wait()
        await app.stop()
        return app.exit_code

    assert uvloop.run(press()) == 75  # systemd restarts on 75
    left = sorted(os.listdir(b.data_dir))
    assert not any(n.startswith(("settings.db", "querylog")) or n == "jwt.key" for n in left), left
    b2 = BurrowProcess(tmp_path / "again", [upstream.address])
    b2.config["storage"]["data_dir"] = str(b.data_dir)
    b2.data_dir = b.data_dir
    with b2:
        status, body = b2.http("POST", "/api/auth/setup", {"username": "owner", "password": "Fresh-Start-Pass-2024"})
        assert status == 201, body
