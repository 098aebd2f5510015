"""Command line: ``burrow run|check-config`` and ``--version``. Wiring only."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from . import __version__
from .logfile import setup_logging


def _load(args):
    from .config import ConfigError, load
    try:
        return load(args.config, config_dir=args.config_dir), None
    except ConfigError as e:
        return None, e


def cmd_run(args) -> int:
    cfg, err = _load(args)
    if err is not None:
        print("burrow: configuration errors, not starting:", file=sys.stderr)
        for key, msg in err.errors:
            print(f"  {key}: {msg}", file=sys.stderr)
        return 2
    setup_logging(cfg)
    import uvloop

    from .app import App
    app = App(cfg)
    try:
        uvloop.run(app.run_until_signalled())
    except OSError as e:
        logging.getLogger("burrow").error("cannot start: %s", e)
        return 1
    return app.exit_code


def cmd_check_config(args) -> int:
    cfg, err = _load(args)
    if err is not None:
        print("configuration errors:")
        for key, msg in err.errors:
            print(f"  {key}: {msg}")
        return 2
    print("# effective configuration (source in comments)")
    current = None
    for key, value in cfg.items():
        section = key.split(".")[0] if "." in key else None
        if section != current:
            current = section
            if section:
                print(f"\n[{section}]")
        name = key.split(".")[-1]
        print(f"{name} = {json.dumps(value)}  # {cfg.source(key)}")
    print("\nconfiguration OK")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="burrow", description="Burrow DNS sinkhole")
    parser.add_argument("--version", action="version", version=f"burrow {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    from .config import add_cli_arguments
    p = sub.add_parser("run", help="run the DNS server and admin page")
    add_cli_arguments(p, "path to burrow.toml (defaults apply without it)")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("check-config", help="print the effective config and every error")
    add_cli_arguments(p)
    p.set_defaults(func=cmd_check_config)
    from .auth.cli import add_parser as add_user_parser
    add_user_parser(sub)  # burrow user add|passwd|reset-2fa
    from .zones.cli import add_parser as add_zone_parser
    add_zone_parser(sub)  # burrow zone import|export|list
    from .migrate.cli import add_parser as add_import_parser
    add_import_parser(sub)  # burrow import pihole|adguard FILE
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
