"""The real trivy (v0.74.0, built from the Go module proxy as ~/.cache/vouch-peers/bin/trivy-real) run offline
on an OCI layout: `trivy image --input LAYOUT`, SBOM only, no network.

- `--format cyclonedx` turns security scanning off (trivy says so), so no vulnerability DB is needed, and
  `--skip-db-update --offline-scan --skip-version-check --disable-telemetry` leave nothing to fetch: under
  strace it opens no socket at all.
- Jars need trivy's Java DB (a Maven Central index by SHA-1, downloaded on the first run: "'--skip-java-db-update'
  cannot be specified on the first run"). Offline, `java_db` writes an empty one in trivy-java-db's schema
  (v1, no rows): trivy then knows a jar by what it carries (pom.properties, the manifest), as vouch does.
- `--input` takes a docker-archive tar or an OCI layout directory (an OCI archive tar is refused: "stat
  X/index.json: not a directory"), so trivy reads the very gzipped blobs that vouch and syft read.
- trivy caches each layer's analysis in --cache-dir: every run gets a fresh one (a warm cache skips the work).
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path

# trivy-java-db v0.0.0-20240109071736-184bd7481d48 (what trivy v0.74.0's go.mod pins), pkg/db/db.go Init()
_SCHEMA = (
    "CREATE TABLE artifacts(id INTEGER PRIMARY KEY, group_id TEXT, artifact_id TEXT)",
    "CREATE TABLE indices(artifact_id INTEGER, version TEXT, sha1 BLOB, archive_type TEXT, "
    "foreign key (artifact_id) references artifacts(id))",
    "CREATE UNIQUE INDEX artifacts_idx ON artifacts(artifact_id, group_id)",
    "CREATE INDEX indices_artifact_idx ON indices(artifact_id)",
    "CREATE UNIQUE INDEX indices_sha1_idx ON indices(sha1)",
)


def java_db(cache_dir: Path) -> None:
    """An empty Java DB in trivy's cache directory (java-db/trivy-java.db and its metadata.json)."""
    d = cache_dir / "java-db"
    d.mkdir(parents=True, exist_ok=True)
    db = d / "trivy-java.db"
    db.unlink(missing_ok=True)
    with sqlite3.connect(db) as conn:
        for stmt in _SCHEMA:
            conn.execute(stmt)
    conn.close()
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    later = now + dt.timedelta(days=3650)  # NextUpdate: trivy would not look for a newer one anyway (skipped)
    (d / "metadata.json").write_text(json.dumps({"Version": 1, "NextUpdate": later.isoformat(),
                                                 "UpdatedAt": now.isoformat(), "DownloadedAt": now.isoformat()}))


def image_args(layout: Path, cache_dir: Path, out: Path) -> list[str]:
    """`trivy image` arguments: the layout's SBOM as CycloneDX into `out`, offline."""
    return ["image", "--input", str(layout), "--format", "cyclonedx", "--offline-scan", "--skip-db-update",
            "--skip-java-db-update", "--skip-version-check", "--disable-telemetry", "--quiet", "--cache-dir",
            str(cache_dir), "-o", str(out)]
