"""Benchmark: `vouch sbom` vs trivy (and syft when built) on the same images, with the decompression floor.

    bash scripts/make-testdata.sh && bash scripts/install-peers.sh   # once
    python benchmarks/sbom.py [--rounds 3] [--images debian,big,mixed] [--json benchmarks/results/sbom.json]

Images (built once from the debootstrap tree, cached under ~/.cache/vouch-testdata):
  debian  1 layer: debootstrap --variant=minbase bookworm (~175 MB, ~6.7k files, 88 packages)
  big     12 layers: debian + 11 layers each holding a copy of its /usr under /opt/stackN
          (~1.5 GB uncompressed, ~72k files)
  mixed   6 layers, ~1.4 GB uncompressed, every ecosystem from real artefacts: debian minbase, pip
          site-packages, an npm app, Go binaries (the probe builds, cosign 2 and 3, helm, kyverno, syft:
          ~890 distinct Go modules), a cargo-auditable Rust binary, Maven Central jars and a fat jar, node,
          python, busybox, a gemspec (tests/support/testdata.py: mixed_image(big=True))
Measured per tool, medians of --rounds runs, wall time and peak RSS (GNU time):
  vouch   `vouch sbom oci:LAYOUT` (reads every layer blob once, streaming)
  syft    `syft scan oci-dir:LAYOUT -o cyclonedx-json` (if ~/.cache/vouch-peers/bin/syft exists)
  trivy-image  the real trivy (v0.74.0, ~/.cache/vouch-peers/bin/trivy-real): `trivy image --input LAYOUT
          --format cyclonedx --offline-scan --skip-db-update --skip-java-db-update`: SBOM only, offline, the
          very gzipped blobs vouch and syft read, a fresh --cache-dir every run holding an empty Java DB
          (tests/support/trivy.py says why each)
  trivy-rootfs  `trivy rootfs` on the unpacked tree with cdxgen's rootfs-only wrapper (~/.cache/vouch-peers/bin/
          trivy, used by older tests: OS packages only, decompresses nothing; not like for like)
  floor   decompress every layer blob and nothing else, with the inflate vouch uses (ISA-L)
  floor-zlib  the same with zlib (what a plain zlib-based reader could not go below)
--baseline SRC also times `vouch sbom` run from another source tree (PYTHONPATH=SRC, e.g. `git worktree add
/tmp/old HEAD~3` then --baseline /tmp/old/src): before/after in the same run, under the same load.
Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.testdata import IMAGES, debian_minbase_image, mixed_image, require_minbase, unpacked
from tests.support.trivy import image_args, java_db

from vouch.testbed.rootfs import LayoutWriter, tar_tree

PEERS = Path(os.environ.get("VOUCH_PEERS_DIR", Path.home() / ".cache" / "vouch-peers")) / "bin"
FLOOR = """
import json, sys, zlib
from pathlib import Path
if sys.argv[2] == "isal":
    from isal import isal_zlib as zlib
layout = Path(sys.argv[1])
index = json.loads((layout / "index.json").read_text())
m = json.loads((layout / "blobs/sha256" / index["manifests"][0]["digest"].split(":")[1]).read_bytes())
total = 0
for layer in m["layers"]:
    d = zlib.decompressobj(wbits=31)
    with open(layout / "blobs/sha256" / layer["digest"].split(":")[1], "rb") as f:
        while chunk := f.read(1 << 20):
            total += len(d.decompress(chunk))
print(total)
"""


def big_image() -> tuple[Path, Path]:
    """(layout, unpacked root) of the big image."""
    base = require_minbase()
    out, root = IMAGES / "bench-big", IMAGES / "bench-big-root"
    if not (out / "index.json").exists():
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)
        work = Path(tempfile.mkdtemp(prefix="vouch-big-", dir=IMAGES))
        writer = LayoutWriter(out)
        tar_tree(base, work / "l0.tar", exclude=[".complete", "dev", "proc", "sys"])
        writer.add_layer_tar(work / "l0.tar")
        (work / "l0.tar").unlink()
        subprocess.run(["cp", "-a", "--no-dereference", str(base), str(root)], check=True)
        for n in range(1, 12):
            stage = work / f"s{n}"
            (stage / "opt" / f"stack{n}").mkdir(parents=True)
            subprocess.run(["cp", "-al", str(base / "usr"), str(stage / "opt" / f"stack{n}" / "usr")], check=True)
            tar_tree(stage, work / f"l{n}.tar")
            writer.add_layer_tar(work / f"l{n}.tar")
            (work / f"l{n}.tar").unlink()
            (root / "opt" / f"stack{n}").mkdir(parents=True, exist_ok=True)
            subprocess.run(["cp", "-al", str(base / "usr"), str(root / "opt" / f"stack{n}" / "usr")], check=True)
            shutil.rmtree(stage)
        writer.finish("big")
        shutil.rmtree(work)
    return out, root


def measure(cmd: list[str], env: dict[str, str] | None = None, fresh: Path | None = None) -> tuple[float, int]:
    """(wall seconds, peak RSS KiB) of one run, by GNU time; `fresh` (trivy's cache directory) is emptied
    first, then holds only the empty offline Java DB (tests/support/trivy.py)."""
    if fresh is not None:
        shutil.rmtree(fresh, ignore_errors=True)
        java_db(fresh)
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        r = subprocess.run(["/usr/bin/time", "-f", "%e %M", "-o", tf.name, *cmd], capture_output=True, text=True,
                           timeout=3600, env={**os.environ, **(env or {})})
        if r.returncode != 0:
            raise SystemExit(f"{cmd[0]} failed ({r.returncode}): {r.stderr[-1500:]}")
        wall, rss = tf.read().split()[-2:]
    return float(wall), int(rss)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--images", default="debian,big,mixed", help="comma-separated: debian, big, mixed")
    ap.add_argument("--baseline", type=Path, help="also time vouch from this source tree (before/after)")
    ap.add_argument("--tools", help="comma-separated subset of: floor, floor-zlib, vouch, vouch-baseline, "
                    "trivy-image, trivy-rootfs, syft (default: all that are installed)")
    args = ap.parse_args()
    # As an installed wheel runs: pip compiles the modules at install time; an editable install under
    # PYTHONDONTWRITEBYTECODE=1 (this test bed's environment) would compile every module on every run.
    import vouch as vouch_package
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(vouch_package.__file__).parent)], check=True)
    if not Path("/usr/bin/time").exists():
        print("GNU time is missing: apt-get install time", file=sys.stderr)
        return 2
    wanted = args.images.split(",")
    images: dict[str, tuple[Path, Path]] = {}
    if "debian" in wanted:
        images["debian"] = (debian_minbase_image(), require_minbase())
    if "big" in wanted:
        images["big"] = big_image()
    if "mixed" in wanted:
        mixed = mixed_image(big=True)
        images["mixed"] = (mixed, unpacked(mixed))
    out = Path(tempfile.mkdtemp(prefix="vouch-bench-sbom-"))
    results: dict[str, dict[str, dict[str, float]]] = {}
    try:
        for name, (layout, root) in images.items():
            tools: dict[str, list[str]] = {
                "floor": [sys.executable, "-c", FLOOR, str(layout), "isal"],  # the inflate vouch uses
                "floor-zlib": [sys.executable, "-c", FLOOR, str(layout), "zlib"],
                "vouch": [sys.executable, "-m", "vouch", "sbom", f"oci:{layout}", "--output-file",
                          str(out / f"{name}.vouch.json")],
            }
            envs: dict[str, dict[str, str]] = {}
            if args.baseline:
                tools["vouch-baseline"] = [sys.executable, "-m", "vouch", "sbom", f"oci:{layout}", "--output-file",
                                           str(out / f"{name}.vouch-baseline.json")]
                envs["vouch-baseline"] = {"PYTHONPATH": str(args.baseline.resolve())}
            if (PEERS / "trivy-real").exists():
                tools["trivy-image"] = [str(PEERS / "trivy-real"),
                                        *image_args(layout, out / "trivy-cache", out / f"{name}.trivy-image.json")]
            if (PEERS / "trivy").exists():
                tools["trivy-rootfs"] = [str(PEERS / "trivy"), "rootfs", "--offline-scan", "--skip-db-update",
                                         "--cache-dir", str(out / "trivy-cache"), "--format", "cyclonedx", "-o",
                                         str(out / f"{name}.trivy-rootfs.json"), str(root)]
            if (PEERS / "syft").exists():
                tools["syft"] = [str(PEERS / "syft"), "scan", f"oci-dir:{layout}", "-q", "-o",
                                 f"cyclonedx-json={out / f'{name}.syft.json'}"]
            if args.tools:
                tools = {t: c for t, c in tools.items() if t in args.tools.split(",")}
            for tool, cmd in tools.items():
                fresh = out / "trivy-cache" if tool == "trivy-image" else None
                runs = [measure(cmd, envs.get(tool), fresh) for _ in range(args.rounds)]
                results.setdefault(name, {})[tool] = {
                    "seconds": statistics.median(r[0] for r in runs),
                    "peak_rss_mib": statistics.median(r[1] for r in runs) / 1024,
                }
            for tool in tools:
                f = out / f"{name}.{tool}.json"
                if f.exists():
                    doc = json.loads(f.read_text())
                    results[name][tool]["components"] = len(doc.get("components", []))
    finally:
        shutil.rmtree(out, ignore_errors=True)

    for name, tools_r in results.items():
        size = sum(f.stat().st_size for f in images[name][0].rglob("*") if f.is_file())
        print(f"\n{name}: layout {size / 1e6:.0f} MB compressed; medians of {args.rounds} run(s)")
        print(f"  {'tool':14} {'seconds':>8} {'peak RSS MiB':>13} {'components':>11}")
        for tool, m in tools_r.items():
            print(f"  {tool:14} {m['seconds']:8.2f} {m['peak_rss_mib']:13.0f} {int(m.get('components', 0)):>11}")
        v = tools_r.get("vouch")
        if v is None:
            continue
        ratios = {f"vouch/{t}": v["seconds"] / m["seconds"] for t, m in tools_r.items() if t != "vouch"}
        print("  time ratios: " + ", ".join(f"{k} {r:.2f}x" for k, r in ratios.items()))
        tools_r["ratios"] = ratios
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
