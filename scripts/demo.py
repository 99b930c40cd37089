"""vouch demo: the ADR's whole job on a self-contained default.

Starts a real docker-registry on loopback and pushes a 14-image sample release (Debian, distroless,
Alpine and rpm-based images, three of them multi-arch), writes its release.yaml, generates a cosign
key pair, then runs what the Woodpecker pipeline runs:

  vouch release         sign every digest, attach a CycloneDX SBOM attestation (first run)
  vouch release         again: nothing to do, nothing written (idempotent re-run)
  vouch verify-release  the CI gate (06-trivy.yml)
  cosign verify / verify-attestation   stock cosign's second opinion, when it is installed
  the gate on an unsigned image        refused

and prints a report (also written as .demo/report.json).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml
from rich.console import Console
from rich.table import Table

from vouch.keys.cosign import encrypt_private_key, generate_private_key, public_key_pem
from vouch.oci.build import push_image
from vouch.oci.client import RegistryClient
from vouch.oci.reference import Reference
from vouch.testbed.registry import start_registry
from vouch.testbed.samples import APP_KIND, RELEASE_IMAGES, sample_image, sample_release

console = Console(stderr=True, width=max(110, Console(stderr=True).width))


def vouch(*args: str, env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], float]:
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "vouch", *args], capture_output=True, text=True, env=env,
                       stdin=subprocess.DEVNULL, timeout=900)
    return r, time.perf_counter() - t


def main() -> int:
    out_dir = Path(os.environ.get("VOUCH_DEMO_DIR", ".demo")).resolve()
    out_dir.mkdir(exist_ok=True)
    console.rule("[bold]vouch demo: ADR-032 on a 14-image release")
    server = start_registry("plain")
    console.print(f"registry: docker-registry on {server.host} (real CNCF distribution, loopback only)")
    try:
        client = RegistryClient()
        refs = []
        for name, img in sample_release().items():
            ref = Reference(server.host, f"akko/{name}", "2026.04")
            push_image(client, ref, img)
            refs.append(str(ref))
        manifest = out_dir / "release.yaml"
        manifest.write_text(yaml.safe_dump({"release": "2026.04", "images": refs}))
        console.print(f"pushed {len(refs)} sample images; release manifest {manifest}")

        password = os.environ.get("COSIGN_PASSWORD", "demo")
        key = generate_private_key()
        (out_dir / "cosign.key").write_bytes(encrypt_private_key(key, password.encode()))
        os.chmod(out_dir / "cosign.key", 0o600)
        (out_dir / "cosign.pub").write_bytes(public_key_pem(key))
        env = {**os.environ, "COSIGN_PASSWORD": password}
        env.pop("AKKO_SIGN_IMAGES", None)
        env.pop("VOUCH_SIGN_IMAGES", None)

        first, t_first = vouch("release", "--key", str(out_dir / "cosign.key"), "--manifest", str(manifest),
                               "--report", str(out_dir / "release-1.json"), env=env)
        rerun, t_rerun = vouch("release", "--key", str(out_dir / "cosign.key"), "--manifest", str(manifest),
                               "--report", str(out_dir / "release-2.json"), env=env)
        gate, t_gate = vouch("verify-release", "--key", str(out_dir / "cosign.pub"), "--manifest", str(manifest),
                             "--max-age", "90d", env=env)
        if first.returncode != 0:
            console.print(first.stderr)
            return 1
        r1 = json.loads((out_dir / "release-1.json").read_text())
        r2 = json.loads((out_dir / "release-2.json").read_text())

        cosigns = [c for c in ("cosign2", "cosign3") if shutil.which(c)]
        peer: dict[str, dict[str, str]] = {}
        for c in cosigns:
            cenv = {**os.environ, "HOME": str(out_dir / "cosign-home")}
            for img in r1["images"]:
                pinned = f"{img['image']}@{img['digest']}"
                flags = ["--key", str(out_dir / "cosign.pub"), "--insecure-ignore-tlog=true", "--offline=true",
                         "--allow-http-registry=true"]
                sig = subprocess.run([c, "verify", *flags, pinned], capture_output=True, env=cenv, timeout=120)
                att = subprocess.run([c, "verify-attestation", *flags, "--type", "cyclonedx", pinned],
                                     capture_output=True, env=cenv, timeout=120)
                peer.setdefault(img["digest"], {})[c] = (
                    "ok" if sig.returncode == 0 and att.returncode == 0 else
                    f"FAILED (verify {sig.returncode}, verify-attestation {att.returncode})")

        intruder = Reference(server.host, "akko/unsigned-intruder", "2026.04")
        push_image(client, intruder, sample_image("intruder", "debian"))
        refused, _ = vouch("verify-release", "--key", str(out_dir / "cosign.pub"), str(intruder), env=env)

        table = Table(title="Release 2026.04")
        kinds = {n: d + (f"+{APP_KIND[n]}" if n in APP_KIND else "") + (" (index)" if multi else "")
                 for n, d, multi in RELEASE_IMAGES}
        for col in ("image", "kind", "platform", "digest", "signature", "SBOM", "packages per ecosystem", "re-run",
                    *[f"{c} check" for c in cosigns]):
            table.add_column(col)
        rerun_by_image = {(i["image"], i.get("platform", "")): i for i in r2["images"]}
        for img in r1["images"]:
            again = rerun_by_image[(img["image"], img.get("platform", ""))]
            short = img["image"].split("/", 1)[1].removeprefix("akko/")
            table.add_row(short, kinds.get(short, ""), img.get("platform") or "-", img["digest"][7:19],
                          img["signature"], img["sbom"],
                          ", ".join(f"{k} {v}" for k, v in sorted(img.get("ecosystems", {}).items()))
                          or str(img["packages"]),
                          "no-op" if (again["signature"], again["sbom"]) == ("already-signed", "current")
                          else f"{again['signature']}, sbom {again['sbom']}",
                          *[peer[img["digest"]][c] for c in cosigns])
        console.print(table)
        console.print(f"first run: {len({i['image'] for i in r1['images']})} images ({len(r1['images'])} digests with "
                      f"their platforms) signed and attested in {t_first:.2f} s "
                      f"({r1['requests']} registry requests)")
        console.print(f"re-run:    {t_rerun:.2f} s including start-up, {r2['requests']} registry requests, "
                      "nothing written")
        console.print(f"gate (verify-release --max-age 90d): {'PASS' if gate.returncode == 0 else 'FAIL'} "
                      f"in {t_gate:.2f} s")
        console.print(f"gate on an unsigned image: {'REFUSED' if refused.returncode == 1 else 'ACCEPTED'} "
                      f"(exit {refused.returncode})")
        if cosigns:
            console.print(f"stock {' and '.join(cosigns)}: verify + verify-attestation on every digest")
        else:
            console.print("real cosign not installed: `bash scripts/demo.sh --with-peers` adds its second opinion")
        console.print(f"operator pipeline: vouch download attestation IMAGE | jq -r .payload | base64 -d | "
                      f"jq .predicate  (keys and reports in {out_dir})")
        report = {"registry": server.host, "first_run": r1, "rerun": r2, "first_seconds": t_first,
                  "rerun_seconds": t_rerun, "gate_pass": gate.returncode == 0,
                  "unsigned_refused": refused.returncode == 1, "peers": peer}
        (out_dir / "report.json").write_text(json.dumps(report, indent=2))
        ok = (gate.returncode == 0 and refused.returncode == 1 and rerun.returncode == 0
              and all(i["signature"] == "already-signed" and i["sbom"] == "current" for i in r2["images"])
              and all(v == "ok" for p in peer.values() for v in p.values()))
        return 0 if ok else 1
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
