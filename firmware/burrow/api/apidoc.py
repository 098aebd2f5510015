"""Render the OpenAPI document as the Markdown endpoint reference in docs/api.md.

``scripts/gen-api-docs`` rewrites the part of docs/api.md between the two markers below; a
test regenerates it and fails when the file is stale, so the reference cannot drift from the
routes and schemas.
"""

from __future__ import annotations

import json

from .schema import NOT_SPACE, SPACE

BEGIN = "<!-- BEGIN GENERATED REFERENCE: scripts/gen-api-docs -->"
END = "<!-- END GENERATED REFERENCE -->"


def _type(schema: dict, components: dict) -> str:
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in schema and "type" not in schema:
        return " or ".join(_type(s, components) for s in schema["anyOf"])
    t = schema.get("type", "any")
    if isinstance(t, list):
        t = " or ".join(t)
    if t == "array":
        return f"array of {_type(schema.get('items', {}), components)}"
    if "enum" in schema:
        return " \\| ".join(f"`{v}`" for v in schema["enum"])
    return t


def _note(key: str, value) -> str:
    if key == "pattern" and value == NOT_SPACE:
        return "not blank"
    pad = f"^{SPACE}*(?:", f"){SPACE}*$"  # schema._padded: the value is stripped first
    if key == "pattern" and value.startswith(pad[0]) and value.endswith(pad[1]):
        value = "^" + value[len(pad[0]):-len(pad[1])] + "$"
    if key == "pattern" and len(value) > 80:  # an address or a domain name: /openapi.json has it
        return "pattern (see /openapi.json)"
    return f"{key} {json.dumps(value)}"


def _fields(schema: dict, components: dict) -> list[str]:
    if "$ref" in schema:
        schema = components.get(schema["$ref"].rsplit("/", 1)[-1], {})
    props = schema.get("properties") or {}
    if not props:
        return []
    required = set(schema.get("required", []))
    lines = ["| field | type | required | notes |", "|---|---|---|---|"]
    for name, prop in props.items():
        notes = []
        for key in ("minimum", "maximum", "minLength", "maxLength", "pattern", "default"):
            if key in prop:
                notes.append(_note(key, prop[key]))
        if prop.get("description"):
            notes.append(prop["description"])
        note = "; ".join(notes).replace("|", "\\|")
        lines.append(f"| `{name}` | {_type(prop, components)} | {'yes' if name in required else 'no'} | {note} |")
    return lines


def render(doc: dict) -> str:
    components = doc.get("components", {}).get("schemas", {})
    out = [BEGIN, "", "## Endpoint reference", "",
           "Generated from `/openapi.json` by `scripts/gen-api-docs`; do not edit by hand. Roles: "
           "`public` (no credentials), `viewer` (read), `admin` (write), `self` (own account).", ""]
    for path in sorted(doc["paths"]):
        for method, op in sorted(doc["paths"][path].items()):
            out.append(f"### {method.upper()} {path}")
            out.append("")
            out.append(f"{op.get('summary', '')} — role `{op.get('x-role', '?')}`.")
            out.append("")
            params = op.get("parameters") or []
            if params:
                out += ["| parameter | in | type | required |", "|---|---|---|---|"]
                for p in params:
                    out.append(f"| `{p['name']}` | {p['in']} | {_type(p.get('schema', {}), components)} | "
                               f"{'yes' if p.get('required') else 'no'} |")
                out.append("")
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            if body:
                out.append(f"Body: `{_type(body, components)}`")
                out.append("")
                rows = _fields(body, components)
                if rows:
                    out += rows + [""]
            statuses = []
            for status, resp in sorted(op.get("responses", {}).items()):
                content = resp.get("content", {})
                schema = content.get("application/json", {}).get("schema")
                if schema:
                    statuses.append(f"`{status}` {_type(schema, components)}")
                else:  # another media type (openapi.Media), or none
                    statuses.append(" ".join([f"`{status}`", *sorted(content)]))
            out.append("Responses: " + ", ".join(statuses))
            out.append("")
    out.append(END)
    return "\n".join(out) + "\n"


def splice(markdown: str, reference: str) -> str:
    """``markdown`` with the generated block replaced (or appended when absent)."""
    if BEGIN in markdown and END in markdown:
        head = markdown[:markdown.index(BEGIN)]
        tail = markdown[markdown.index(END) + len(END):].lstrip("\n")
        return head + reference + (("\n" + tail) if tail else "")
    return markdown.rstrip("\n") + "\n\n" + reference


def reference_for_code() -> str:
    """The reference for the routes this code registers (no running app needed)."""
    from .. import __version__
    from . import offline_api, openapi

    return render(openapi.build(offline_api(), __version__))
