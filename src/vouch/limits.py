"""Every resource limit vouch applies to outside input, in one place, with the reason for each value.

A hostile registry, image or file must not take the host down: each value bounds memory, time or
work, and is far above what real artefacts need (the reason says how far). docs/operator.md lists them.
"""

from __future__ import annotations

# ---- registry client ------------------------------------------------------------------------------

# A manifest or index: the distribution spec's registries cap them at 4 MiB; real ones are a few KiB.
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
# The part of an error answer read for its message: error bodies are JSON lines, never megabytes.
MAX_ERROR_BODY_BYTES = 64 * 1024
# A token endpoint's whole answer: real ones are a JWT of a few KiB plus a refresh token.
MAX_TOKEN_RESPONSE_BYTES = 1024 * 1024
# The token itself, sent on as a header: real tokens are JWTs of a few KiB, and most servers refuse
# headers over ~16 KiB anyway (a 50 MB token would be sent with every request).
MAX_TOKEN_BYTES = 16 * 1024
# Total time one request may take, status line, headers and body, whatever the server drips (a
# per-read timeout alone lets a server send a byte every few seconds forever). Enforced at the socket.
REQUEST_DEADLINE_SECONDS = 300.0
# Extra time a blob body gets per MiB on top of the request deadline: a floor of 0.5 MiB/s, far below
# any registry a CI runner pulls from, so a 1 GiB layer has ~40 minutes.
BLOB_DEADLINE_SECONDS_PER_MIB = 2.0
# A page of tags: registries answer at most a few thousand per page.
MAX_TAG_PAGES = 1000
# Referrers of one image read from the OCI 1.1 referrers API (all pages): cosign 3 adds one per signature
# and per attestation; an image re-attested nightly for years has a few thousand.
MAX_REFERRERS = 10000

# A public key fetched by URL (`--key https://…/cosign.pub`): a PEM key is under 1 KiB; a bundle of a
# few keys a few KiB. Anything larger is not a key file.
MAX_KEY_URL_BYTES = 1024 * 1024
# Total time to fetch a key by URL, redirects included: one small file from a web server.
KEY_URL_SECONDS = 30.0
# Redirects followed for a key URL (never to plain HTTP): a CDN or a release-asset redirect is one or two.
KEY_URL_REDIRECTS = 5

# ---- signature and attestation tags ------------------------------------------------------------------

# Layers read from one .sig/.att tag. cosign appends one layer per signature; a release image with
# many keys over years has tens. Past this the rest is skipped and said so (a pushed 12,000-layer tag
# must not stall the CI gate).
MAX_LAYERS_PER_TAG = 256
# A simple-signing payload is ~300 bytes; 1 MiB leaves room for very large annotations.
MAX_SIGNATURE_PAYLOAD_BYTES = 1024 * 1024
# A DSSE envelope holding an SBOM: the largest real SBOMs (a 1.4 GB image with every ecosystem) are a
# few MiB; 128 MiB is cosign's own default attachment limit.
MAX_ATTESTATION_BYTES = 128 * 1024 * 1024
# All payloads read from one tag by a verifier: one envelope is in memory at a time, but the time and
# traffic of a tag of many large layers are bounded too. Layers past it are skipped and said so.
MAX_ATTESTATION_BYTES_PER_TAG = 256 * 1024 * 1024

# ---- files the tool reads ---------------------------------------------------------------------------

# release.yaml, kubeconfig, Secret manifests: kilobytes in practice.
MAX_YAML_BYTES = 8 * 1024 * 1024
# Nesting depth of such a YAML document: a kubeconfig is ~6 levels deep, release.yaml 3. PyYAML composes
# recursively, so a deeper document would otherwise end in a RecursionError instead of a message.
MAX_YAML_DEPTH = 100

# ---- files the tool reads or writes: keys, predicates ---------------------------------------------------

# A file read whole by read_key_file: cosign keys are ~650 bytes, but `attest --predicate` reads an SBOM
# through the same function, so the cap is the attestation cap (it stops /dev/zero, not real files).
MAX_INPUT_FILE_BYTES = MAX_ATTESTATION_BYTES

# ---- sigstore bundles and trust roots -------------------------------------------------------------------

# Transparency-log entries in one bundle, as sigstore-go: real bundles carry one; each costs signature checks.
BUNDLE_MAX_TLOG_ENTRIES = 32
# RFC 3161 signed timestamps in one bundle, as sigstore-go: real bundles carry one, from one TSA.
BUNDLE_MAX_TIMESTAMPS = 32
# Hashes of one Merkle inclusion proof: one per tree level, and a tree of 2^64 entries has 64 levels.
BUNDLE_MAX_PROOF_HASHES = 64
# A trusted_root.json: Sigstore's public-good one is ~7 KiB (a few CAs, logs and TSAs with their chains).
MAX_TRUSTED_ROOT_BYTES = 4 * 1024 * 1024
# A blob verify-blob reads whole, to check a signature over its bytes; a larger file is hashed as a stream
# and checked by its digest (Ed25519 message signatures need the bytes, so those stop here).
BLOB_IN_MEMORY_BYTES = 256 * 1024 * 1024

# ---- SBOM: layer streams ----------------------------------------------------------------------------

# A layer is read once, as a stream: compressed bytes are read this much at a time, and every
# decompressor hands back at most SBOM_OUT_CHUNK bytes per call, so memory stays flat (a few MiB per
# layer) whatever the compression ratio; the bomb bounds below are checked chunk by chunk.
SBOM_READ_CHUNK = 256 * 1024
SBOM_OUT_CHUNK = 1024 * 1024
# A layer that decompresses to more than this is refused (--max-layer-bytes): the largest real layers
# (CUDA, ML images) are ~10-20 GiB uncompressed.
SBOM_MAX_LAYER_BYTES = 64 * 1024**3
# Past SBOM_RATIO_FLOOR decompressed bytes, a layer expanding more than this is a bomb: real layers
# compress 2-10x, a sparse file or zeros ~1000x, RLE-coded zstd up to 32768x.
SBOM_MAX_RATIO = 1000.0
SBOM_RATIO_FLOOR = 256 * 1024 * 1024
# The zstd decoder's window, which the frame header asks for and the decoder allocates and fills: a
# hostile layer can make a scan hold this much (measured: 177 MiB peak RSS with it, 57 MiB with the
# 8 MiB window of `zstd -19`). 128 MiB is libzstd's own default limit (`zstd -d` without --memory),
# enough for `--ultra -22` and `--long` layers; buildkit and containers/image write 8 MiB windows.
SBOM_MAX_ZSTD_WINDOW = 128 * 1024 * 1024

# ---- SBOM: tar entries -------------------------------------------------------------------------------

# A PAX extended header or a GNU long-name/long-link record: real ones are a few hundred bytes (a long
# path, a handful of timestamps and xattrs). Only the keys the scan uses (path, linkpath, size) are
# kept, so a header holding 78,000 keys costs its parsing once and nothing per following entry.
SBOM_MAX_TAR_META_BYTES = 1024 * 1024
# A member name or link target: Linux's PATH_MAX is 4096; 16 KiB leaves room for paths tar archived
# deeper than that. Longer ones are refused (each path is kept in memory for the whole scan).
SBOM_MAX_PATH_BYTES = 16 * 1024
# Symlinks followed to resolve one path, as Linux's own limit (MAXSYMLINKS, 40): a loop ends there.
SBOM_MAX_SYMLINK_HOPS = 40
# Directories the path index creates for parents no entry of the image names (tars may omit them):
# real images have a few thousand, one per directory at most. A deep path of implicit parents would
# otherwise cost memory per component at no cost in the tar; past this the image is refused.
SBOM_MAX_IMPLICIT_DIRS = 1_000_000
# Path components walked and symlinks followed by all path lookups of one image's scan (catalogers
# resolve every file a package database lists): real images need ~20 per lookup, ~20 million in all.
# A symlink maze asked about millions of times stops here with a warning; later paths are taken as
# written.
SBOM_MAX_RESOLVE_STEPS = 200_000_000

# ---- SBOM: package databases -----------------------------------------------------------------------

# Virtual-machine instructions sqlite may spend reading an image's rpmdb.sqlite (its schema comes from
# the image: a recursive view would never end). Reading a real 2,000-package database takes ~100,000.
SBOM_MAX_SQLITE_STEPS = 100_000_000

# ---- SBOM: archives and compressed sections inside files ---------------------------------------------

# Java archives (jar, war, ear), nested ones too (Spring Boot fat jars nest one level, WARs two):
# nesting depth, members per archive (the largest fat jars have ~30,000), the declared size of one
# nested archive and of a manifest or pom.properties (real ones: a few KiB), and everything inflated
# under one top-level archive (the largest real fat jars inflate to ~1 GiB).
SBOM_JAVA_MAX_DEPTH = 4
SBOM_JAVA_MAX_MEMBERS = 200_000
SBOM_JAVA_MAX_NESTED_BYTES = 512 * 1024 * 1024
SBOM_JAVA_MAX_META_BYTES = 1024 * 1024
SBOM_JAVA_MAX_TOTAL_BYTES = 4 * 1024**3
# An archive's central directory, checked before zipfile builds an object per member (~10x the bytes):
# a 30,000-member fat jar has ~4 MiB of it.
SBOM_JAVA_MAX_DIRECTORY_BYTES = 16 * 1024 * 1024
# A Rust binary's cargo-auditable section (zlib-compressed JSON), inflated in one bounded call: ~50 KiB
# for 500 crates; parsed JSON takes up to ~20x its size in memory, so 16 MiB (was 64) is the cap.
SBOM_AUDIT_MAX_COMPRESSED = 8 * 1024 * 1024
SBOM_AUDIT_MAX_JSON = 16 * 1024 * 1024

# ---- time ---------------------------------------------------------------------------------------------

# How far in the future an SBOM's metadata.timestamp may lie and still count as "now": the signing
# runner's clock and the verifier's differ by seconds with NTP; 5 minutes covers a drifting CI
# runner. Anything later is refused: a BOM dated 2099 would otherwise pass every --max-age forever.
MAX_CLOCK_SKEW_SECONDS = 300
# The largest --max-age / --refresh-after accepted: 100 years is past any policy, and bounds the
# arithmetic (a 99999999999-day age overflows a date).
MAX_AGE_DAYS = 36500
