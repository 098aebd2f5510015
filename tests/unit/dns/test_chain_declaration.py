"""The chain is declared once (dns/chain.py ``STAGES``): the chain ``build`` makes is that list in
that order, each position says why it sits there, docs/architecture.md draws the same order,
and nothing else in the package links stages into a chain of its own."""

import ast
import re
from pathlib import Path

from burrow import config
from burrow.dns import chain
from burrow.dns.shared import Shared

ROOT = Path(__file__).resolve().parents[3]
PACKAGE = ROOT / "firmware" / "burrow"
DECLARED = [position.name for position in chain.STAGES]


def built():
    cfg = config.load(None, environ={})
    shared = Shared.from_config(cfg)
    return chain.build(cfg, shared), shared


def test_the_built_chain_is_the_declaration_in_its_order():
    made, shared = built()
    assert [stage.name for stage in made.stages] == DECLARED
    assert made.shared is shared
    for position, stage in zip(chain.STAGES, made.stages):
        assert made.stage(position.name) is stage and made.of(type(stage)) is stage


def test_every_position_is_one_stage_and_says_why_it_sits_there():
    assert len(set(DECLARED)) == len(DECLARED) == 8
    for position in chain.STAGES:
        assert len(position.why.split()) >= 5, f"{position.name}: say why it sits there"


def test_the_documented_order_is_the_declared_one():
    text = (ROOT / "docs" / "architecture.md").read_text()
    drawn = [line for line in text.splitlines() if line.rstrip().endswith("(chain.py)")]
    assert len(drawn) == 1, "docs/architecture.md draws the chain once, on a line ending in (chain.py)"
    order = drawn[0].split("parse_query")[-1].split("(chain.py)")[0]
    assert re.findall(r"[a-z]+", order) == DECLARED


def test_no_module_but_the_declaration_links_stages_into_a_chain():
    """A second ``Chain([...])`` in the package would be a second declaration of the order."""
    makers = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "Chain":
                makers.append(str(path.relative_to(PACKAGE)))
    assert makers == ["dns/chain.py"]
