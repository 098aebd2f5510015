"""docs/api.md's endpoint reference is generated from the OpenAPI document and must be current."""

from pathlib import Path

from burrow.api import apidoc

DOC = Path(__file__).resolve().parents[3] / "docs" / "api.md"


def test_reference_in_docs_matches_the_code():
    current = DOC.read_text()
    assert apidoc.BEGIN in current, "run scripts/gen-api-docs"
    assert apidoc.splice(current, apidoc.reference_for_code()) == current, \
        "docs/api.md is stale: run scripts/gen-api-docs"


def test_every_operation_is_in_the_reference():
    from burrow import __version__
    from burrow.api import offline_api, openapi

    doc = openapi.build(offline_api(), __version__)
    text = apidoc.render(doc)
    for path, ops in doc["paths"].items():
        for method in ops:
            assert f"### {method.upper()} {path}\n" in text


def test_splice_replaces_only_the_generated_block():
    md = "intro\n\n" + apidoc.BEGIN + "\nold\n" + apidoc.END + "\n\n## After\ntext\n"
    out = apidoc.splice(md, apidoc.BEGIN + "\nnew\n" + apidoc.END + "\n")
    assert out.startswith("intro\n\n") and "\nnew\n" in out and "old" not in out and out.endswith("## After\ntext\n")
