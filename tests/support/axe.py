"""axe-core in the browser tests: the copy scripts/build-web fetches (package-lock.json, checked
against its integrity) into tests/browser/vendor/axe-core/, never a CDN and never shipped.

The page's Content-Security-Policy refuses inline scripts, so axe is not injected as one: the
page asks for AXE_URL on its own origin and Playwright answers that request with the file
(``page.route``), which ``script-src 'self'`` allows.
"""

from __future__ import annotations

from tests.support.burrow_proc import REPO_ROOT

AXE_JS = REPO_ROOT / "tests" / "browser" / "vendor" / "axe-core" / "axe.min.js"
AXE_URL = "/__test__/axe.min.js"  # answered by Playwright; the server never sees it
BLOCKING = ("serious", "critical")


def axe_source() -> bytes:
    assert AXE_JS.is_file(), f"{AXE_JS} is missing: run scripts/build-web (scripts/test does)"
    return AXE_JS.read_bytes()


def axe_violations(page, base_url: str, impacts=BLOCKING) -> list[dict]:
    """axe-core's violations on the page as it is now, of the given impacts: id, impact, help
    and the first few offending elements (as selectors), for an assertion message."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        body = axe_source()
        page.route(base_url + AXE_URL, lambda route: route.fulfill(
            status=200, body=body, content_type="text/javascript; charset=UTF-8"))
        page.add_script_tag(url=base_url + AXE_URL)
    found = page.evaluate("""async () => {
        const result = await window.axe.run(document, {resultTypes: ["violations"]});
        return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                            nodes: v.nodes.slice(0, 5).map(n => n.target.join(" "))}));
    }""")
    return [v for v in found if v["impact"] in impacts]
