"""The project is declared in pyproject.toml; this file only adds one build step.

Before the package's files are copied into a wheel (a non-editable ``pip install .``, ``python
-m build``, the image build), scripts/build_web.py vendors the admin page's third-party code
from package-lock.json (integrity-checked) and writes the page's precompressed ``.gz`` files, so
the wheel carries them (docs/architecture.md, "The page's static files"). An editable install
skips the step: scripts/run and scripts/test run scripts/build-web themselves.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


class build_py_with_web(build_py):  # noqa: N801 (setuptools' command naming)
    def run(self):
        if not getattr(self, "editable_mode", False):
            spec = importlib.util.spec_from_file_location("build_web", HERE / "scripts" / "build_web.py")
            assert spec is not None and spec.loader is not None
            build_web = importlib.util.module_from_spec(spec)
            sys.modules["build_web"] = build_web  # its dataclasses look their module up
            spec.loader.exec_module(build_web)
            try:
                build_web.build(HERE, dev=False)
            except build_web.BuildError as exc:
                raise SystemExit(f"build-web: error: {exc}") from None
            # The package data is listed lazily; list it again now that the files exist.
            self.__dict__.pop("data_files", None)
        super().run()


setup(cmdclass={"build_py": build_py_with_web})
