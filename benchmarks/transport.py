"""Benchmark: the registry client's HTTP layer, vouch.oci.transport (its own HTTP/1.1) vs httpx, side by side.

    python benchmarks/transport.py [--requests 400] [--rounds 5] [--json benchmarks/results/transport.json]

Against one real docker-registry on loopback, both keep-alive, one connection each:
  import   a fresh interpreter importing the module (minus a bare interpreter's start), compiled bytecode;
           httpx without its optional command line and trio, as vouch imported it
  GET      --requests GETs of a small manifest by digest, one after another, bodies read whole
  threads  the same spread over 4 threads sharing the one pool (as `vouch verify` of a release does)
Medians of --rounds; ratios are transport/httpx (below 1: the transport is faster). Not a test: nothing here
asserts a time. Why this exists: vouch replaced httpx in the registry client with vouch.oci.transport on
these figures (see its docstring).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from vouch.oci import transport
from vouch.oci.build import push_image
from vouch.oci.client import RegistryClient
from vouch.oci.reference import Reference
from vouch.testbed.registry import start_registry
from vouch.testbed.samples import sample_release

ACCEPT = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json"


def import_ms(module: str, rounds: int) -> float:
    def run(code: str) -> float:
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        return time.perf_counter() - t

    runs = 3 * rounds  # (start-up times are noisy: more runs than the request rounds)
    bare = statistics.median(run("pass") for _ in range(runs))
    return 1000 * (statistics.median(run(f"import {module}") for _ in range(runs)) - bare)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    import vouch as vouch_package

    subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(vouch_package.__file__).parent)], check=True)
    import httpx

    server = start_registry("plain")
    try:
        client = RegistryClient()
        urls = []
        for name, img in list(sample_release().items())[:8]:
            ref = Reference(server.host, f"t/{name}", "v1")
            urls.append(f"http://{server.host}/v2/t/{name}/manifests/{push_image(client, ref, img)}")
        client.close()
        todo = [urls[i % len(urls)] for i in range(args.requests)]

        def with_httpx(threads: int) -> float:
            with httpx.Client(timeout=60) as http:
                def one(url: str) -> int:
                    return len(http.get(url, headers={"Accept": ACCEPT}).content)
                one(todo[0])
                t = time.perf_counter()
                with ThreadPoolExecutor(threads) as pool:
                    list(pool.map(one, todo))
                return time.perf_counter() - t

        def with_transport(threads: int) -> float:
            pool_ = transport.Pool(transport.no_trust_context)

            def one(url: str) -> int:
                return len(pool_.send("GET", url, {"Accept": ACCEPT}).read())
            one(todo[0])
            t = time.perf_counter()
            with ThreadPoolExecutor(threads) as ex:
                list(ex.map(one, todo))
            pool_.close()
            return time.perf_counter() - t

        # httpx as vouch imported it: without its own command line (click, rich) and trio (see vouch.cli.entry)
        httpx_lean = "sys; sys.modules['httpx._main'] = sys.modules['trio'] = None; import httpx"
        figures: dict[str, Any] = {"import_ms": {"httpx": import_ms(httpx_lean, args.rounds),
                                                 "transport": import_ms("vouch.oci.transport", args.rounds)}}
        for threads in (1, 4):
            h = statistics.median(with_httpx(threads) for _ in range(args.rounds))
            v = statistics.median(with_transport(threads) for _ in range(args.rounds))
            figures[f"get_{threads}_thread_s"] = {"httpx": h, "transport": v}
    finally:
        server.stop()
    imp = figures["import_ms"]
    print(f"import: httpx {imp['httpx']:.0f} ms, vouch.oci.transport {imp['transport']:.0f} ms "
          f"({imp['transport'] / imp['httpx']:.2f}x)")
    for threads in (1, 4):
        f = figures[f"get_{threads}_thread_s"]
        print(f"{args.requests} GETs, {threads} thread(s): httpx {f['httpx']:.3f} s, transport {f['transport']:.3f} s "
              f"({f['transport'] / f['httpx']:.2f}x; {1000 * f['httpx'] / args.requests:.2f} vs "
              f"{1000 * f['transport'] / args.requests:.2f} ms per request)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
