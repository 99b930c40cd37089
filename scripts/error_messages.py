"""List the user-facing error messages in src/vouch (the literal text before the first placeholder).

Used by tests/test_docs.py: every message must have an entry in docs/troubleshooting.md.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

USER_FACING = {"InputError", "KeyError_", "ReferenceError_", "RegistryError", "NotFoundError", "DigestMismatchError",
               "VerificationError", "BombError", "VouchError"}


def _literal_head(node: ast.expr) -> str:
    """The leading literal text of a str or f-string expression (up to the first placeholder)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        out = ""
        for part in node.values:
            if isinstance(part, ast.Constant) and isinstance(part.value, str):
                out += part.value
            else:
                break
        return out
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _literal_head(node.left)
    return ""


def _literal_text(node: ast.expr) -> str:
    """All literal fragments of the message, joined by '…' where placeholders stand."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "…".join(p.value for p in node.values if isinstance(p, ast.Constant) and isinstance(p.value, str))
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _literal_text(node.left) + "…" + _literal_text(node.right)
    return ""


def messages(root: Path) -> list[tuple[str, int, str]]:
    """(file, line, the longest literal fragment of the message) for every user-facing raise."""
    out = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if not isinstance(node, ast.Raise) or not isinstance(node.exc, ast.Call):
                continue
            func = node.exc.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if name not in USER_FACING or not node.exc.args:
                continue
            text = _literal_text(node.exc.args[0])
            fragments = [f.strip(" :;,.'\"()") for f in text.split("…")]
            key = max(fragments, key=len) if fragments else ""
            if len(key) >= 12:
                out.append((str(path.relative_to(root.parent.parent)), node.lineno, key))
    return out


if __name__ == "__main__":
    root = Path(__file__).resolve().parents[1] / "src" / "vouch"
    for f, line, key in messages(root):
        print(f"{f}:{line}: {key}")
    sys.exit(0)
