"""Print docs/operator.md's table of resource limits from src/vouch/limits.py (name, value, reason).

The reason is the comment block above each constant. tests/test_docs.py checks that the guide holds
exactly this table, so a limit added or changed in limits.py must be re-rendered here:
    python scripts/limits_table.py > /tmp/t && (edit docs/operator.md between the markers)
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- limits:begin -->", "<!-- limits:end -->"


def _value(node: ast.expr, env: dict[str, object]) -> object:
    return eval(compile(ast.Expression(node), "limits", "eval"), {}, env)  # constants only


def _human(v: object) -> str:
    if isinstance(v, int) and not isinstance(v, bool) and v >= 1024 and v % 1024 == 0:
        for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
            if v % size == 0:
                return f"{v // size} {unit}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def table() -> str:
    path = ROOT / "src" / "vouch" / "limits.py"
    lines = path.read_text().splitlines()
    tree = ast.parse(path.read_text())
    env: dict[str, object] = {}
    rows = ["| limit | value | why |", "|---|---|---|"]
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            continue
        name = node.targets[0].id
        value = _value(node.value, env)
        env[name] = value
        comment: list[str] = []
        i = node.lineno - 2
        while i >= 0 and lines[i].lstrip().startswith("#") and not lines[i].lstrip().startswith("# ----"):
            comment.insert(0, lines[i].lstrip()[1:].strip())
            i -= 1
        reason = " ".join(comment).replace("|", "/") or "(with the row above: one comment covers both)"
        rows.append(f"| `{name}` | {_human(value)} | {reason} |")
    return "\n".join([BEGIN, *rows, END])


if __name__ == "__main__":
    sys.stdout.write(table() + "\n")
