"""vouch demo: the ADR's job on a self-contained default.

Starts a real docker-registry on loopback, pushes a 14-image sample release, generates a cosign key
pair, signs every image by digest (index children too), generates each image's CycloneDX SBOM from
the registry, re-runs the signing to show nothing is added, verifies
with vouch (and with real cosign when installed), checks that the CI gate refuses an unsigned
image, and prints a report (also written as JSON).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from vouch.keys.cosign import encrypt_private_key, generate_private_key, public_key_pem
from vouch.oci.build import Image, push_image
from vouch.oci.client import RegistryClient
from vouch.oci.reference import Reference
from vouch.oci.source import RegistrySource
from vouch.sbom.generate import generate_sbom
from vouch.signing.sign import sign_image
from vouch.signing.signer import KeySigner
from vouch.testbed.registry import start_registry
from vouch.testbed.samples import sample_release
from vouch.verify.signatures import verify_image

console = Console(stderr=True)


def main() -> int:
    out_dir = Path(os.environ.get("VOUCH_DEMO_DIR", ".demo"))
    out_dir.mkdir(exist_ok=True)
    console.rule("[bold]vouch demo: sign and verify a 14-image release")
    server = start_registry("plain")
    console.print(f"registry: docker-registry on {server.host} (real CNCF distribution, loopback only)")
    report: dict[str, object] = {"registry": server.host, "images": []}
    try:
        client = RegistryClient()
        release = sample_release()
        refs: dict[str, Reference] = {}
        for name, img in release.items():
            ref = Reference(server.host, f"akko/{name}", "2026.04")
            push_image(client, ref, img)
            refs[name] = ref
        console.print(f"pushed {len(refs)} sample images as {server.host}/akko/<name>:2026.04")

        password = os.environ.get("COSIGN_PASSWORD", "demo")
        key = generate_private_key()
        (out_dir / "cosign.key").write_bytes(encrypt_private_key(key, password.encode()))
        os.chmod(out_dir / "cosign.key", 0o600)
        (out_dir / "cosign.pub").write_bytes(public_key_pem(key))
        signer = KeySigner(key)
        console.print(f"key pair: {out_dir}/cosign.key (encrypted, 0600) and {out_dir}/cosign.pub")

        rows = []
        t0 = time.perf_counter()
        for ref in refs.values():
            results = sign_image(client, signer, ref, recursive=True)
            rows.append({"image": str(ref), "digest": results[0].digest,
                         "signed": sum(r.signed for r in results), "targets": len(results)})
        first = time.perf_counter() - t0
        t1 = time.perf_counter()
        requests_before = client.request_count
        rerun_signed = 0
        for ref in refs.values():
            rerun_signed += sum(r.signed for r in sign_image(client, signer, ref, recursive=True))
        rerun = time.perf_counter() - t1
        rerun_requests = client.request_count - requests_before

        # SBOMs: every image read once, layer by layer, straight from the registry
        sbom_dir = out_dir / "sbom"
        sbom_dir.mkdir(exist_ok=True)
        t2 = time.perf_counter()
        for row in rows:
            ref = Reference.parse(str(row["image"]))
            result = generate_sbom(RegistrySource(client, ref.with_digest(str(row["digest"]))))
            name = ref.repository.split("/")[-1]
            (sbom_dir / f"{name}.cdx.json").write_text(result.to_json(indent=2))
            row["distro"] = result.distro.qualifier if result.distro else "unknown"
            row["packages"] = len(result.packages)
        sbom_seconds = time.perf_counter() - t2

        cosigns = [c for c in ("cosign2", "cosign3") if shutil.which(c)]
        for row in rows:
            ref = Reference.parse(str(row["image"]))
            res = verify_image(client, ref, [signer.public_key])
            row["vouch_verify"] = "ok" if res.ok else res.reason()
            for c in cosigns:
                r = subprocess.run([c, "verify", "--key", str(out_dir / "cosign.pub"), "--insecure-ignore-tlog=true",
                                    "--offline=true", f"{ref.name}@{row['digest']}"],
                                   capture_output=True, text=True, timeout=120,
                                   env={**os.environ, "HOME": str(out_dir / "cosign-home")})
                row[c] = "ok" if r.returncode == 0 else f"FAILED: {r.stderr.strip().splitlines()[-1:]}"

        unsigned = Reference(server.host, "akko/unsigned-intruder", "2026.04")
        push_image(client, unsigned, Image(release["api-gateway"].layers[:1]  # type: ignore[union-attr]
                                           if isinstance(release["api-gateway"], Image) else []))
        gate = verify_image(client, unsigned, [signer.public_key])

        table = Table(title="Release 2026.04")
        table.add_column("image")
        table.add_column("digest")
        table.add_column("distro")
        table.add_column("pkgs")
        table.add_column("signed (1st run)")
        table.add_column("vouch verify")
        for c in cosigns:
            table.add_column(f"{c} verify")
        for row in rows:
            table.add_row(str(row["image"]).split("/", 1)[1].split(":")[0].removeprefix("akko/"),
                          str(row["digest"])[7:19], str(row["distro"]), str(row["packages"]),
                          f"{row['signed']}/{row['targets']}", str(row["vouch_verify"]),
                          *[str(row[c]) for c in cosigns])
        console.print(table)
        console.print(f"first run: signed {sum(int(str(r['signed'])) for r in rows)} digests in {first:.2f} s")
        console.print(f"SBOMs: {len(rows)} CycloneDX 1.5 documents in {sbom_seconds:.2f} s -> {sbom_dir}/")
        console.print(f"re-run: {rerun_signed} new signatures, {rerun_requests} registry requests, {rerun:.2f} s "
                      "(idempotent: nothing written)")
        console.print(f"CI gate on an unsigned image: {'REFUSED' if not gate.ok else 'ACCEPTED'} ({gate.reason()})")
        if not cosigns:
            console.print("real cosign not installed: run `bash scripts/demo.sh --with-peers` for its second opinion")
        report.update({"sbom_seconds": sbom_seconds, "images": rows, "first_run_seconds": first, "rerun_seconds": rerun,
                       "rerun_new_signatures": rerun_signed, "rerun_requests": rerun_requests,
                       "unsigned_gate_refused": not gate.ok, "peers": cosigns})
        (out_dir / "report.json").write_text(json.dumps(report, indent=2))
        console.print(f"report: {out_dir}/report.json")
        all_ok = all(r["vouch_verify"] == "ok" and all(r[c] == "ok" for c in cosigns) for r in rows)
        return 0 if all_ok and rerun_signed == 0 and not gate.ok else 1
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
