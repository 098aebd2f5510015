"""The Swagger UI and ReDoc files that /docs and /redoc load are package data, with the licences
that cover them, at the versions docs/dependencies.md names (scripts/vendor-api-viewers)."""

import re
from pathlib import Path

from burrow.api import docs

DEPENDENCIES = Path(__file__).resolve().parents[3] / "docs" / "dependencies.md"


def test_every_file_the_viewer_pages_load_is_in_the_package():
    for page in (docs.SWAGGER_PAGE, docs.REDOC_PAGE):
        assets = re.findall(r'"/docs/assets/([^"]+)"', page)
        assert assets, page
        for asset in assets:
            assert (docs.VIEWERS_DIR / asset).is_file(), asset


def test_each_viewer_carries_its_licence_and_its_bundles_notices():
    for viewer in ("swagger-ui-dist", "redoc"):
        assert (docs.VIEWERS_DIR / viewer / "LICENSE").is_file(), viewer
    bundles = sorted(docs.VIEWERS_DIR.rglob("*.js"))
    assert bundles
    for bundle in bundles:
        # Each bundle opens with "/*! For license information please see <file> */".
        head = bundle.read_text(errors="replace")[:200]
        notices = re.search(r"please see (\S+) \*/", head)
        assert notices, bundle
        assert (bundle.parent / notices.group(1)).is_file(), (bundle, notices.group(1))


def test_dependencies_doc_names_the_vendored_versions():
    text = DEPENDENCIES.read_text()
    for line in (docs.VIEWERS_DIR / "VERSIONS").read_text().splitlines():
        package, version = line.split()
        assert f"{version} (`{package}`" in text, line
