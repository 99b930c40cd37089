"""`vouch report`: a release's verified evidence per image and platform (signature, SBOM age against the
limit, packages per ecosystem, licences, optional query results) as a self-contained HTML page and JSON."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from vouch.cli import keyless as kl
from vouch.cli.common import OutputFormat, VouchTyper, emit, err, state
from vouch.cli.query import CacheDirOpt, ConcurrencyOpt, KeysOpt, MaxAgeOpt, NoCacheOpt, _client, _split_args, _table
from vouch.cli.query import _trust as query_trust
from vouch.errors import EXIT_REGISTRY, EXIT_VERIFY, InputError, RegistryError


def write_atomic(path: str, data: str) -> None:
    """The whole file or nothing: a temporary file beside it, renamed over it."""
    target = Path(path)
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"cannot write {path}: the directory {parent} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(data)
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise RegistryError(f"cannot write the report {path}: {exc.strerror or exc}") from exc


def _trust_text(key: list[str] | None, identity: str | None, identity_re: str | None, issuer: str | None,
                issuer_re: str | None) -> str:
    parts = [f"key {k}" for k in key or []]
    if identity or identity_re:
        parts.append(f"identity {identity or identity_re} from {issuer or issuer_re}")
    return "; ".join(parts)


def report(
    ctx: typer.Context,
    args: Annotated[list[str] | None, typer.Argument(
        metavar="[IMAGES...] [PURL]", help="Images (or --manifest), and optionally a package URL to look for "
                                           "(with --range), as `vouch query`.")] = None,
    manifest: Annotated[str | None, typer.Option(help="release.yaml: report on its images.")] = None,
    html: Annotated[str | None, typer.Option("--html", metavar="FILE", help="Write the HTML page here.")] = None,
    json_file: Annotated[str | None, typer.Option("--json", metavar="FILE", help="Write the JSON form here.")]
    = None,
    range_: Annotated[list[str] | None, typer.Option(
        "--range", metavar="VERS", help="Versions of the package URL to match (vers:deb/<3.0.13; repeatable).")]
    = None,
    osv: Annotated[str | None, typer.Option(
        "--osv", metavar="FILE", help="An OSV advisory: report what it says is affected.")] = None,
    no_source: Annotated[bool, typer.Option(
        "--no-source", help="Match distro packages by their own name only, not their source package.")] = False,
    key: KeysOpt = None,
    max_age: MaxAgeOpt = "90d",
    concurrency: ConcurrencyOpt = 8,
    no_cache: NoCacheOpt = False,
    cache_dir: CacheDirOpt = None,
    certificate_identity: kl.IdentityOpt = None,
    certificate_identity_regexp: kl.IdentityRegexpOpt = None,
    certificate_oidc_issuer: kl.IssuerOpt = None,
    certificate_oidc_issuer_regexp: kl.IssuerRegexpOpt = None,
    certificate_extension: kl.CiExtensionsOpt = None,
    trusted_root: kl.TrustedRootOpt = None,
) -> None:
    """A release report from verified evidence only: per image and platform the signature (key id or
    identity), the SBOM's age against the limit, packages per ecosystem, licences, and the matches of an
    optional package query. --html writes one self-contained page (no external resource, no script),
    --json (or -o json) the same data. Exit 0 when every image is signed with a fresh verified SBOM, 1 when
    one is not (the report is written all the same), 3 registry or write fault."""
    from vouch.cli.release_fast import release_images
    from vouch.keys.files import read_key_file
    from vouch.query.match import PackageQuery, osv_queries, parse_query
    from vouch.query.sboms import age_text
    from vouch.release.plan import load_manifest
    from vouch.report.build import build_report
    from vouch.report.html import render
    from vouch.verify.bomfacts import parse_age

    st = state(ctx)
    purls, images = _split_args(list(args or []))
    queries: list[PackageQuery] | None = None
    if len(purls) > 1:
        raise InputError("give one package URL (several packages: an OSV file with --osv)")
    if purls and osv:
        raise InputError("give a package URL or --osv FILE, not both")
    if range_ and not purls:
        raise InputError("--range needs a package URL (pkg:deb/debian/libssl3) to apply to")
    if osv:
        queries, notes = osv_queries(read_key_file(osv), by_source=not no_source)
        for n in notes:
            err(f"note: {n}")
    elif purls:
        queries = [parse_query(purls[0], range_, by_source=not no_source)]
    for target in (html, json_file):  # before any registry work: a typo in the path is bad input
        if target and not (Path(target).parent if str(Path(target).parent) else Path(".")).is_dir():
            raise InputError(f"cannot write {target}: the directory {Path(target).parent} does not exist")
    plan = release_images(manifest, images or None)
    release_name = load_manifest(manifest).name if manifest else None
    keys = query_trust(key, (certificate_identity, certificate_identity_regexp, certificate_oidc_issuer,
                             certificate_oidc_issuer_regexp), trusted_root, certificate_extension)
    client, cache = _client(ctx, no_cache, cache_dir)
    age = parse_age(max_age)
    data = build_report(client, keys, plan, release=release_name, max_age=age, queries=queries,
                        concurrency=concurrency,
                        trust_text=_trust_text(key, certificate_identity, certificate_identity_regexp,
                                               certificate_oidc_issuer, certificate_oidc_issuer_regexp))
    import json

    if html:
        write_atomic(html, render(data))
    if json_file:
        write_atomic(json_file, json.dumps(data, indent=2, sort_keys=False) + "\n")
    if st.output == OutputFormat.text:
        rows: list[list[str]] = []
        for x in data["images"]:
            sig, sbom = x["signature"], x["sbom"]
            rows.append([x["image"], x["platform"] or "-", x["digest"][:19] or "-",
                         str(sig.get("signer")) if sig["verified"] else "NOT SIGNED",
                         (age_text(None) if sbom.get("ageSeconds") is None else _age(sbom["ageSeconds"], age_text))
                         if sbom["verified"] else "NOT VERIFIED",
                         str(x.get("packages", {}).get("total", "-"))]
                        + ([str(sum(1 for m in x.get("matches", []) if m["affected"]))] if queries else []))
        sys.stdout.write(_table(rows, ["IMAGE", "PLATFORM", "DIGEST", "SIGNER", "SBOM", "PACKAGES"]
                                + (["MATCHES"] if queries else [])) + "\n")
        problems = [x for x in data["images"] if not (x["signature"]["verified"] and x["sbom"]["verified"])]
        for x in problems:
            why = x["signature"].get("reason") or x["sbom"].get("reason")
            err(f"{x['ref']}{' [' + x['platform'] + ']' if x['platform'] else ''}: {why}")
    else:
        emit(st, data, "")
    s = data["summary"]
    err(f"{s['complete']} of {s['platformImages']} platform image(s) signed with a fresh verified SBOM"
        + (f"; HTML: {html}" if html else "") + (f"; JSON: {json_file}" if json_file else "")
        + (f"; cache: {cache.hits} hit(s), {cache.misses} read from the registry" if cache is not None else ""))
    if s["registryFaults"]:
        raise typer.Exit(EXIT_REGISTRY)
    if s["complete"] != s["platformImages"]:
        raise typer.Exit(EXIT_VERIFY)


def _age(seconds: Any, age_text: Any) -> str:
    import datetime as dt

    return str(age_text(dt.timedelta(seconds=float(seconds))))


def register(app: VouchTyper) -> None:
    app.command("report")(report)
