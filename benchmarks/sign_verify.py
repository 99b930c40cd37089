"""Benchmark: sign then verify a 14-image release, vouch vs real cosign, side by side in one run.

    python benchmarks/sign_verify.py [--rounds 3] [--json benchmarks/results/sign_verify.json]

Each tool gets its own copy of the same release (same digests, different repositories) in one real
docker-registry on loopback. Timed per tool: first sign run, idempotent re-run, verify of all
images, and verify of one image (a process per image: start-up included); the verifies, which are
short and read-only, run --verify-repeats times per round with the tools taking turns. Both tools are driven
through their CLIs, all 14 images in one invocation (cosign verify takes many images too, one after
another in one process; vouch verifies them in parallel), key-based, no transparency log (cosign:
--tlog-upload=false / --insecure-ignore-tlog --offline).
Reports wall times and vouch/cosign ratios (below 1 means vouch is faster). Not a test: nothing
here asserts a time.
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
import time
from pathlib import Path

from vouch.keys.cosign import encrypt_private_key, generate_private_key, public_key_pem
from vouch.oci.build import push_image
from vouch.oci.client import RegistryClient
from vouch.oci.reference import Reference
from vouch.testbed.registry import start_registry
from vouch.testbed.samples import sample_release


def timed(cmd: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=900)
    elapsed = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} failed: {r.stderr[-2000:]}")
    return elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3, help="fresh repositories per round; medians reported")
    ap.add_argument("--verify-repeats", type=int, default=5,
                    help="verify runs per tool and round, the tools taking turns (medians of all)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    # As an installed wheel runs: pip compiles the modules at install time; an editable install under
    # PYTHONDONTWRITEBYTECODE=1 (this test bed's environment) would compile every module on every run.
    import vouch as vouch_package
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(vouch_package.__file__).parent)], check=True)

    peers_dir = Path(os.environ.get("VOUCH_PEERS_DIR", Path.home() / ".cache" / "vouch-peers")) / "bin"
    cosigns = {n: shutil.which(n) or str(peers_dir / n) for n in ("cosign2", "cosign3")}
    cosigns = {n: p for n, p in cosigns.items() if Path(p).exists()}
    if not cosigns:
        print("no cosign found: run scripts/install-peers.sh first", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="vouch-bench-"))
    key = generate_private_key()
    (work / "k.key").write_bytes(encrypt_private_key(key, b"pw"))
    (work / "k.pub").write_bytes(public_key_pem(key))
    env = {**os.environ, "COSIGN_PASSWORD": "pw", "HOME": str(work), "TUF_ROOT": str(work / "tuf")}
    vouch = [sys.executable, "-m", "vouch"]
    server = start_registry("plain")
    results: dict[str, dict[str, list[float]]] = {}
    try:
        client = RegistryClient()
        release = sample_release()
        # The same work in cosign 3's default layout (sigstore bundles as referrers; the fallback index on
        # this registry): vouch --new-bundle-format against cosign 3 in bundle mode.
        tools = ["vouch", *cosigns] + (["vouch-bundle", "cosign3-bundle"] if "cosign3" in cosigns else [])
        for rnd in range(args.rounds):
            images: dict[str, list[str]] = {}
            for tool in tools:
                images[tool] = []
                for name, img in release.items():
                    ref = Reference(server.host, f"r{rnd}-{tool}/{name}", "2026.04")
                    d = push_image(client, ref, img)
                    images[tool].append(f"{ref.name}@{d}")
            verify_cmds: dict[str, list[str]] = {}
            for tool in tools:
                if tool.startswith("vouch"):
                    sign = [*vouch, "sign", "--recursive", "--key", str(work / "k.key")]
                    sign += ["--new-bundle-format"] if tool == "vouch-bundle" else []
                    verify = [*vouch, "verify", "--key", str(work / "k.pub")]
                elif tool == "cosign3-bundle":
                    sign = [cosigns["cosign3"], "sign", "--recursive", "--key", str(work / "k.key"),
                            "--new-bundle-format=true", "--use-signing-config=false", "--tlog-upload=false", "--yes",
                            "--allow-http-registry=true"]
                    verify = [cosigns["cosign3"], "verify", "--key", str(work / "k.pub"), "--insecure-ignore-tlog=true",
                              "--allow-http-registry=true"]
                else:
                    sign = [cosigns[tool], "sign", "--recursive", "--key", str(work / "k.key"), "--tlog-upload=false",
                            "--yes", "--allow-http-registry=true"]
                    if tool == "cosign3":
                        sign += ["--new-bundle-format=false", "--use-signing-config=false"]
                    verify = [cosigns[tool], "verify", "--key", str(work / "k.pub"), "--insecure-ignore-tlog=true",
                              "--offline=true", "--allow-http-registry=true"]
                r = results.setdefault(tool, {"sign_first": [], "sign_rerun": [], "verify": [], "verify_one": []})
                r["sign_first"].append(timed(sign + images[tool], env))
                r["sign_rerun"].append(timed(sign + images[tool], env))
                verify_cmds[tool] = verify
            # verify is read-only and short (a tenth of a second, which one busy moment can double): each
            # tool's verify runs --verify-repeats times per round, the tools taking turns
            for _ in range(args.verify_repeats):
                for tool in tools:
                    results[tool]["verify"].append(timed(verify_cmds[tool] + images[tool], env))
                    results[tool]["verify_one"].append(timed(verify_cmds[tool] + images[tool][:1], env))
        # start-up: `vouch --version` beside `cosign version`, taking turns
        startup: dict[str, list[float]] = {"vouch": [], **{t: [] for t in cosigns}}
        for _ in range(10):
            startup["vouch"].append(timed([*vouch, "--version"], env))
            for t, path in cosigns.items():
                startup[t].append(timed([path, "version"], env))
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)

    med = {t: {k: statistics.median(v) for k, v in r.items()} for t, r in results.items()}
    print(f"14-image release (20 digests incl. index children), {args.rounds} round(s), verify "
          f"{args.verify_repeats}x per round, medians in seconds")
    print(f"{'tool':14} {'sign 1st':>10} {'re-sign':>10} {'verify':>10} {'verify 1':>10}")
    for t, m in med.items():
        print(f"{t:14} {m['sign_first']:10.2f} {m['sign_rerun']:10.2f} {m['verify']:10.2f} {m['verify_one']:10.2f}")
    ratios = {}
    pairs = [("vouch", t) for t in cosigns] + ([("vouch-bundle", "cosign3-bundle")] if "cosign3" in cosigns else [])
    for ours, t in pairs:
        ratios[t] = {k: med[ours][k] / med[t][k] for k in med[ours]}
        print(f"{ours}/{t}: " + ", ".join(f"{k} {v:.2f}x" for k, v in ratios[t].items()))
    start_med = {t: statistics.median(v) for t, v in startup.items()}
    print("start-up (10 runs each, medians): vouch --version " + f"{start_med['vouch'] * 1000:.0f} ms, " + ", ".join(
        f"{t} version {start_med[t] * 1000:.0f} ms ({start_med['vouch'] / start_med[t]:.2f}x)" for t in cosigns))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"medians": med, "ratios_vouch_over_peer": ratios, "raw": results,
                                         "startup_medians": start_med}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
