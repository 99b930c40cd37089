"""`vouch query` (which images of a release contain a package, by purl and `vers:` range or an OSV
advisory) and `vouch diff` (what changed between two images or releases), over verified SBOMs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from vouch.cli import keyless as kl
from vouch.cli.common import OutputFormat, VouchTyper, emit, err, ref_arg, state
from vouch.errors import EXIT_REGISTRY, EXIT_VERIFY, InputError
from vouch.release.plan import ReleaseImage

KeysOpt = Annotated[list[str] | None, typer.Option(
    "--key", help="Public key PEM (repeatable): only SBOMs attested with it count. Without it, keyless: "
                  "--certificate-identity and --certificate-oidc-issuer.")]
MaxAgeOpt = Annotated[str, typer.Option("--max-age", help="Older SBOMs are reported, not read.")]
ConcurrencyOpt = Annotated[int, typer.Option(min=1, max=64, help="Images read in parallel.")]
NoCacheOpt = Annotated[bool, typer.Option(
    "--no-cache", help="Read every attestation from the registry (the cache is content-addressed and re-verified "
                       "either way).")]
CacheDirOpt = Annotated[str | None, typer.Option(
    "--cache-dir", metavar="DIR", help="Where verified attestations are cached (default $VOUCH_CACHE_DIR, else "
                                       "~/.cache/vouch/sboms).")]


def _trust(key: list[str] | None, identity: tuple[str | None, str | None, str | None, str | None],
           trusted_root: str | None, extensions: list[str] | None) -> Any:
    from vouch.cli.main import _verifier_trust

    return _verifier_trust(key, identity, trusted_root, extensions=extensions)


def _client(ctx: typer.Context, no_cache: bool, cache_dir: str | None) -> Any:
    from vouch.query.cache import BlobCache, caching_client, default_cache_dir

    client = state(ctx).client()
    cache = None if no_cache else BlobCache(Path(cache_dir) if cache_dir else default_cache_dir())
    return caching_client(client, cache), cache


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in [header, *rows])


def _split_args(args: list[str]) -> tuple[list[str], list[str]]:
    purls = [a for a in args if a.startswith("pkg:")]
    return purls, [a for a in args if not a.startswith("pkg:")]


def query(
    ctx: typer.Context,
    args: Annotated[list[str] | None, typer.Argument(
        metavar="[IMAGES...] [PURL]", help="The package URL to look for (pkg:deb/debian/libssl3, qualifiers and "
                                           "@version optional), after the images (or use --manifest).")] = None,
    manifest: Annotated[str | None, typer.Option(help="release.yaml: query its images.")] = None,
    range_: Annotated[list[str] | None, typer.Option(
        "--range", metavar="VERS", help="Versions to match, in the purl vers syntax: vers:deb/<3.0.13, "
                                        "'vers:pypi/>=2.0|<2.32.0' (repeatable: any of them).")] = None,
    osv: Annotated[str | None, typer.Option(
        "--osv", metavar="FILE", help="An OSV advisory (osv.dev JSON): look for what it says is affected.")] = None,
    no_source: Annotated[bool, typer.Option(
        "--no-source", help="Match distro packages by their own name only, not by their source package "
                            "(pkg:deb/debian/openssl finds libssl3 unless this is given).")] = False,
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
    """Which images of a release contain a package: searched in each image's (each platform image's)
    verified, fresh CycloneDX SBOM. Exit 0 when something matched, 1 when nothing did (as grep); an image
    without a verified SBOM is listed with the reason."""
    from vouch.cli.release_fast import release_images
    from vouch.keys.files import read_key_file
    from vouch.query.match import PackageQuery, match_bom, osv_queries, parse_query
    from vouch.query.sboms import age_text, release_boms
    from vouch.verify.bomfacts import parse_age

    st = state(ctx)
    purls, images = _split_args(list(args or []))
    queries: list[PackageQuery] = []
    if osv:
        if range_:
            raise InputError("--range and --osv both say which versions: give one of them")
        queries, notes = osv_queries(read_key_file(osv), by_source=not no_source)
        for n in notes:
            err(f"note: {n}")
    if len(purls) > 1:
        raise InputError("give one package URL (several packages: an OSV file with --osv)")
    if purls and osv:
        raise InputError("give a package URL or --osv FILE, not both")
    if purls:
        queries = [parse_query(purls[0], range_, by_source=not no_source)]
    if not queries:
        raise InputError("nothing to look for: give a package URL (pkg:deb/debian/libssl3) or --osv FILE")
    plan: list[ReleaseImage] = release_images(manifest, images or None)
    keys = _trust(key, (certificate_identity, certificate_identity_regexp, certificate_oidc_issuer,
                        certificate_oidc_issuer_regexp), trusted_root, certificate_extension)
    client, cache = _client(ctx, no_cache, cache_dir)
    boms = release_boms(client, keys, plan, parse_age(max_age), concurrency)
    results: list[dict[str, Any]] = []
    rows: list[list[str]] = []
    matched = unknown = 0
    for b in boms:
        where = b.platform or "-"
        digest = b.digest[:19] if b.digest else "-"
        entry: dict[str, Any] = {"image": b.image, "ref": b.ref, "digest": b.digest, "platform": b.platform,
                                 "sbom": b.sbom_json(), "matches": []}
        results.append(entry)
        if b.bom is None:
            rows.append([b.image, digest, where, "-", "-", "-", f"NOT SEARCHED: {b.problem}"])
            continue
        for m in match_bom(queries, b.bom):
            entry["matches"].append(m.to_json())
            if m.affected:
                matched += 1
            else:
                unknown += 1
            found = ", ".join(m.where) or "-"
            if m.via != "name":
                found += f" ({m.via})"
            rows.append([b.image, digest, where, m.purl, m.version + ("" if m.affected else " (?)"), found,
                         age_text(b.age)])
    unsearched = [b for b in boms if b.bom is None]
    if st.output == OutputFormat.text:
        if rows:
            sys.stdout.write(_table(rows, ["IMAGE", "DIGEST", "PLATFORM", "COMPONENT", "VERSION", "FOUND IN",
                                           "SBOM"]) + "\n")
    else:
        emit(st, {"query": [q.to_json() for q in queries], "matched": matched, "undecided": unknown,
                  "notSearched": len(unsearched), "images": results}, "")
    searched = len(boms) - len(unsearched)
    err(f"{matched} match(es) in {len({b.digest for b in boms if b.bom is not None and _hit(results, b.digest)})} "
        f"of {searched} searched image(s)" + (f"; {len(unsearched)} not searched (no verified, fresh SBOM)"
                                             if unsearched else "")
        + (f"; {unknown} with a version vouch could not order (marked ?)" if unknown else "")
        + (f"; cache: {cache.hits} hit(s), {cache.misses} read from the registry" if cache is not None else ""))
    if any(b.exit_code == EXIT_REGISTRY for b in unsearched):
        raise typer.Exit(EXIT_REGISTRY)
    if not matched:
        raise typer.Exit(EXIT_VERIFY)


def _hit(results: list[dict[str, Any]], digest: str) -> bool:
    return any(r["digest"] == digest and any(m["affected"] for m in r["matches"]) for r in results)


def _pair_key(img: ReleaseImage) -> str:
    return img.ref.repository


def diff(
    ctx: typer.Context,
    images: Annotated[list[str] | None, typer.Argument(metavar="[OLD NEW]", help="Two images to compare.")] = None,
    manifest: Annotated[list[str] | None, typer.Option(
        "--manifest", help="Two release.yaml files, old then new: images paired by repository.")] = None,
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
    """What changed between two images or two releases, from their verified SBOMs: packages added,
    removed, upgraded or downgraded (each ecosystem's version ordering) and licence changes, per image
    and platform. Exit 0 when every pair was compared, 1 when an SBOM did not verify, 3 registry."""
    from vouch.query.diff import diff_boms, summary
    from vouch.query.sboms import ImageBom, release_boms
    from vouch.release.plan import load_manifest
    from vouch.verify.bomfacts import parse_age

    st = state(ctx)
    if manifest and images:
        raise InputError("give either two images or --manifest OLD --manifest NEW, not both")
    if manifest:
        if len(manifest) != 2:
            raise InputError("give --manifest twice: the old release, then the new one")
        old_plan, new_plan = load_manifest(manifest[0]).images, load_manifest(manifest[1]).images
    elif images and len(images) == 2:
        old_plan, new_plan = [ReleaseImage(ref_arg(images[0]))], [ReleaseImage(ref_arg(images[1]))]
    else:
        raise InputError("give two images (OLD NEW) or --manifest OLD --manifest NEW")
    keys = _trust(key, (certificate_identity, certificate_identity_regexp, certificate_oidc_issuer,
                        certificate_oidc_issuer_regexp), trusted_root, certificate_extension)
    client, _ = _client(ctx, no_cache, cache_dir)
    age = parse_age(max_age)
    old_boms = release_boms(client, keys, old_plan, age, concurrency)
    new_boms = release_boms(client, keys, new_plan, age, concurrency)

    # Pair images: two images always; releases by repository path (the registry may differ between them).
    if not manifest:
        pairs: list[tuple[str, list[ImageBom], list[ImageBom]]] = [(f"{images[0]} -> {images[1]}" if images else "",
                                                                   old_boms, new_boms)]
    else:
        names = list(dict.fromkeys([_pair_key(i) for i in old_plan] + [_pair_key(i) for i in new_plan]))
        repo_of = {b.ref: ref_arg(b.ref).repository for b in old_boms + new_boms}
        pairs = [(n, [b for b in old_boms if repo_of[b.ref] == n], [b for b in new_boms if repo_of[b.ref] == n])
                 for n in names]
    out: list[dict[str, Any]] = []
    lines: list[str] = []
    failed = registry = False
    for name, olds, news in pairs:
        platforms = list(dict.fromkeys([b.platform for b in olds] + [b.platform for b in news]))
        for plat in platforms:
            o = next((b for b in olds if b.platform == plat), None)
            n = next((b for b in news if b.platform == plat), None)
            entry: dict[str, Any] = {"image": name, "platform": plat,
                                     "old": None if o is None else {"ref": o.ref, "digest": o.digest,
                                                                    "sbom": o.sbom_json()},
                                     "new": None if n is None else {"ref": n.ref, "digest": n.digest,
                                                                    "sbom": n.sbom_json()}}
            out.append(entry)
            title = f"{name}" + (f" [{plat}]" if plat else "")
            if o is None or n is None:
                only = n if o is None else o
                entry["status"] = "added" if o is None else "removed"
                lines.append(f"== {title}: image {entry['status']}"
                             + (f" ({only.digest[:19]})" if only is not None and only.digest else ""))
                continue
            bad = [b for b in (o, n) if b.bom is None]
            if bad:
                failed = True
                registry = registry or any(b.exit_code == EXIT_REGISTRY for b in bad)
                entry["status"] = "not compared"
                entry["reason"] = "; ".join(f"{b.ref}: {b.problem}" for b in bad)
                lines.append(f"== {title}: NOT COMPARED: {entry['reason']}")
                continue
            changes = diff_boms(o.bom, n.bom)
            entry["status"] = "compared"
            entry["summary"] = summary(changes)
            entry["changes"] = [c.to_json() for c in changes]
            s = entry["summary"]
            same = " (same digest)" if o.digest == n.digest else ""
            lines.append(f"== {title}: {o.digest[:19]} -> {n.digest[:19]}{same}: {s['added']} added, "
                         f"{s['removed']} removed, {s['upgraded']} upgraded, {s['downgraded']} downgraded, "
                         f"{s['changed']} changed, {s['licenseChanges']} licence change(s)")
            lines += [f"   {c.text()}" for c in changes]
    if st.output == OutputFormat.text:
        sys.stdout.write("\n".join(lines) + "\n")
    else:
        emit(st, {"images": out}, "")
    if registry:
        raise typer.Exit(EXIT_REGISTRY)
    if failed:
        raise typer.Exit(EXIT_VERIFY)


def register(app: VouchTyper) -> None:
    app.command("query")(query)
    app.command("diff")(diff)
