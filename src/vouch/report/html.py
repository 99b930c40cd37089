"""The release report as one self-contained HTML page: inline CSS, no script, no external resource
(an air-gapped auditor opens it from a USB stick), and a Content-Security-Policy that would refuse
any script or remote load even if something slipped through.

Every value comes from the report's data, and much of that from signed-but-untrusted SBOMs (image
names, licences, package names): each one goes through `html.escape` here; numbers used in styles
are formatted from floats, never copied as text.
"""

from __future__ import annotations

from html import escape
from typing import Any

CSS = """
:root { --ok:#1a7f37; --bad:#cf222e; --warn:#9a6700; --mute:#57606a; --line:#d0d7de; --bg:#f6f8fa; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; margin: 0;
       color: #1f2328; background: #fff; }
header { padding: 20px 28px; background: #24292f; color: #fff; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header .meta { color: #c9d1d9; font-size: 13px; }
main { padding: 18px 28px 40px; }
.tiles { display: flex; flex-wrap: wrap; gap: 12px; margin-bottom: 18px; }
.tile { border: 1px solid var(--line); border-radius: 8px; padding: 10px 16px; min-width: 150px;
        background: var(--bg); }
.tile .n { font-size: 26px; font-weight: 600; }
.tile .l { color: var(--mute); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.tile.bad .n { color: var(--bad); } .tile.ok .n { color: var(--ok); }
table { border-collapse: collapse; width: 100%; margin: 8px 0 20px; }
th, td { text-align: left; vertical-align: top; padding: 7px 9px; border-bottom: 1px solid var(--line); }
th { background: var(--bg); font-size: 12px; text-transform: uppercase; letter-spacing: .03em; color: var(--mute); }
td { max-width: 420px; overflow-wrap: anywhere; }
code, .mono { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12px; word-break: break-all; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600; color: #fff; }
.badge.ok { background: var(--ok); } .badge.bad { background: var(--bad); } .badge.warn { background: var(--warn); }
.bar { width: 160px; height: 8px; background: #eaeef2; border-radius: 4px; overflow: hidden; margin-top: 4px; }
.bar > span { display: block; height: 100%; }
.small { font-size: 12px; color: var(--mute); }
.chips span { display: inline-block; margin: 1px 3px 1px 0; padding: 0 6px; border: 1px solid var(--line);
              border-radius: 4px; font-size: 12px; background: var(--bg); }
.reason { color: var(--bad); }
section.image { border: 1px solid var(--line); border-radius: 8px; padding: 10px 16px; margin: 14px 0; }
section.image h3 { margin: 4px 0 6px; font-size: 15px; }
details summary { cursor: pointer; color: var(--mute); }
footer { color: var(--mute); font-size: 12px; padding: 0 28px 24px; }
"""

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"


def e(value: Any) -> str:
    """Escape anything for text and attribute context."""
    return escape("" if value is None else str(value), quote=True)


def _short(digest: str) -> str:
    return digest[:19] + "…" if len(digest) > 20 else digest


def _badge(ok: bool, yes: str, no: str, warn: bool = False) -> str:
    cls = "ok" if ok else ("warn" if warn else "bad")
    return f'<span class="badge {cls}">{e(yes if ok else no)}</span>'


def _age_cell(sbom: dict[str, Any]) -> str:
    if not sbom.get("verified"):
        return f'{_badge(False, "", "not verified")}<div class="reason small">{e(sbom.get("reason"))}</div>'
    age, limit, left = sbom.get("ageDays"), sbom.get("maxAgeDays"), sbom.get("daysLeft")
    if age is None:
        return _badge(True, "fresh", "") + '<div class="small">no timestamp</div>'
    text = f"{float(age):.1f} days old"
    if limit is None:
        return f'{_badge(True, "fresh", "")} <span class="age">{e(text)}</span>'
    frac = max(0.0, min(1.0, float(age) / float(limit))) if float(limit) > 0 else 1.0
    colour = "var(--ok)" if frac < 0.66 else "var(--warn)"
    return (f'{_badge(True, "fresh", "", warn=frac >= 0.66)} <span class="age">{e(text)}</span>'
            f'<div class="bar" title="{e(f"{float(age):.1f} of {float(limit):.0f} days")}">'
            f'<span style="width:{frac * 100:.1f}%;background:{colour}"></span></div>'
            f'<div class="small">limit {float(limit):.0f} days, {float(left or 0):.1f} left</div>')


def _signature_cell(sig: dict[str, Any]) -> str:
    if not sig.get("verified"):
        return f'{_badge(False, "", "not signed")}<div class="reason small">{e(sig.get("reason"))}</div>'
    ident = sig.get("identity")
    who = (f'<div class="mono signer">{e(ident.get("subject"))}</div><div class="small">issuer '
           f'{e(ident.get("issuer"))}</div>') if isinstance(ident, dict) else \
        f'<div class="mono signer">{e(sig.get("signer"))}</div>'
    return f'{_badge(True, "signed", "")}{who}<div class="small">{e(sig.get("layout"))}</div>'


def _chips(pairs: list[tuple[str, Any]]) -> str:
    return '<div class="chips">' + "".join(f"<span>{e(k)} {e(v)}</span>" for k, v in pairs) + "</div>"


def _matches(entry: dict[str, Any]) -> str:
    rows = entry.get("matches") or []
    if not rows:
        return '<span class="small">none</span>'
    out = []
    for m in rows:
        mark = _badge(True, "affected", "") if m.get("affected") else _badge(False, "", "undecided", warn=True)
        where = ", ".join(str(w) for w in m.get("where") or [])
        out.append(f'<div class="match">{mark} <b class="mono">{e(m.get("name"))}</b> {e(m.get("version"))}'
                   f'<div class="small mono">{e(m.get("purl"))}</div>'
                   + (f' <span class="small">via {e(m.get("via"))}</span>' if m.get("via") != "name" else "")
                   + (f'<div class="small">{e(where)}</div>' if where else "") + "</div>")
    return "".join(out)


def render(report: dict[str, Any]) -> str:
    s = report.get("summary") or {}
    entries = report.get("images") or []
    queried = report.get("query") is not None
    title = f"Release {report.get('release')}" if report.get("release") else "Release report"
    tiles = [("images", s.get("images"), None), ("platform images", s.get("platformImages"), None),
             ("signed", f"{s.get('signed')}/{s.get('platformImages')}", s.get("signed") == s.get("platformImages")),
             ("fresh verified SBOMs", f"{s.get('sbomVerified')}/{s.get('platformImages')}",
              s.get("sbomVerified") == s.get("platformImages")),
             ("packages", s.get("packages"), None)]
    if queried:
        tiles.append(("query matches", s.get("matches"), None))
    tile_html = "".join(
        f'<div class="tile{"" if ok is None else (" ok" if ok else " bad")}"><div class="n">{e(n)}</div>'
        f'<div class="l">{e(label)}</div></div>' for label, n, ok in tiles)

    rows = []
    for i, x in enumerate(entries):
        pk = x.get("packages") or {}
        rows.append(
            f'<tr id="row-{i}"><td><div class="mono image">{e(x.get("image"))}</div>'
            f'<div class="small">{e(x.get("ref"))}</div></td>'
            f'<td>{e(x.get("platform") or "–")}</td>'
            f'<td><code class="digest-short" title="{e(x.get("digest"))}">{e(_short(x.get("digest") or "") or "–")}'
            "</code></td>"
            f'<td>{_signature_cell(x.get("signature") or {})}</td>'
            f'<td>{_age_cell(x.get("sbom") or {})}</td>'
            f'<td class="count">{e(pk.get("total", "–"))}</td>'
            + (f"<td>{_matches(x)}</td>" if queried else "") + "</tr>")
    head = ("<tr><th>Image</th><th>Platform</th><th>Digest</th><th>Signature</th><th>SBOM age</th>"
            "<th>Packages</th>" + ("<th>Query</th>" if queried else "") + "</tr>")

    details = []
    for i, x in enumerate(entries):
        pk = x.get("packages")
        if not pk:
            continue
        eco = _chips(list((pk.get("byEcosystem") or {}).items()))
        lic = pk.get("licences") or []
        lic_rows = "".join(f'<tr><td class="licence">{e(li.get("licence"))}</td><td>{e(li.get("components"))}</td>'
                           "</tr>" for li in lic)
        sbom = x.get("sbom") or {}
        details.append(
            f'<section class="image" id="image-{i}"><h3><span class="mono">{e(x.get("image"))}</span>'
            + (f' <span class="small">{e(x.get("platform"))}</span>' if x.get("platform") else "")
            + f'</h3><div class="small">digest <code class="digest">{e(x.get("digest"))}</code> · SBOM serial '
            f'<code>{e(sbom.get("serialNumber"))}</code> · generated {e(sbom.get("timestamp"))} · attested by '
            f'<code>{e(sbom.get("signer"))}</code></div>'
            f'<p><b>{e(pk.get("total"))}</b> packages by ecosystem:</p>{eco}'
            f'<details{" open" if len(lic) <= 12 else ""}><summary>{len(lic)} licence(s)</summary>'
            "<table><tr><th>Licence</th><th>Components</th></tr>"
            f"{lic_rows}</table></details></section>")

    query_html = ""
    if queried:
        qs = "".join(f"<li><code>{e(q.get('purl'))}</code> {e(' | '.join(q.get('ranges') or []) or 'any version')}"
                     + (f" <span class='small'>{e(q.get('label'))}</span>" if q.get("label") else "") + "</li>"
                     for q in report.get("query") or [])
        query_html = f"<h2>Query</h2><ul class='query'>{qs}</ul>"

    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{e(CSP)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(title)}</title><style>{CSS}</style></head><body>"
        f'<header><h1>{e(title)}</h1><div class="meta">generated {e(report.get("generated"))} by '
        f'{e(report.get("generator"))} · trust: {e(report.get("trust"))} · SBOM limit '
        f'{e(report.get("maxAgeDays"))} days</div></header><main>'
        f'<div class="tiles">{tile_html}</div>{query_html}'
        f"<h2>Images</h2><table class=\"images\">{head}{''.join(rows)}</table>"
        f"<h2>Packages and licences</h2>{''.join(details) or '<p class=small>no verified SBOM</p>'}"
        "</main><footer>Only verified evidence is counted: an image signature and a CycloneDX SBOM attestation "
        "checked against the trust above, the SBOM's subject the image digest and within the age limit. "
        "The JSON form of this report holds the same data.</footer></body></html>\n")
