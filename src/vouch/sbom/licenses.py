"""Licence names → SPDX ids where the name is certain; names otherwise."""

from __future__ import annotations

import re

# Debian DEP-5 short names and common spellings. Only exact, well-known equivalences.
_MAP = {
    "gpl-1": "GPL-1.0-only", "gpl-1+": "GPL-1.0-or-later",
    "gpl-2": "GPL-2.0-only", "gpl-2+": "GPL-2.0-or-later", "gpl-2.0": "GPL-2.0-only", "gpl-2.0+": "GPL-2.0-or-later",
    "gpl-3": "GPL-3.0-only", "gpl-3+": "GPL-3.0-or-later", "gpl-3.0": "GPL-3.0-only", "gpl-3.0+": "GPL-3.0-or-later",
    "gplv2": "GPL-2.0-only", "gplv2+": "GPL-2.0-or-later", "gplv3": "GPL-3.0-only", "gplv3+": "GPL-3.0-or-later",
    "lgpl-2": "LGPL-2.0-only", "lgpl-2+": "LGPL-2.0-or-later", "lgpl-2.0": "LGPL-2.0-only",
    "lgpl-2.0+": "LGPL-2.0-or-later", "lgpl-2.1": "LGPL-2.1-only", "lgpl-2.1+": "LGPL-2.1-or-later",
    "lgplv2.1": "LGPL-2.1-only", "lgplv2.1+": "LGPL-2.1-or-later",
    "lgpl-3": "LGPL-3.0-only", "lgpl-3+": "LGPL-3.0-or-later", "lgpl-3.0": "LGPL-3.0-only",
    "lgpl-3.0+": "LGPL-3.0-or-later", "lgplv3+": "LGPL-3.0-or-later",
    "agpl-3": "AGPL-3.0-only", "agpl-3+": "AGPL-3.0-or-later",
    "bsd-2-clause": "BSD-2-Clause", "bsd-3-clause": "BSD-3-Clause", "bsd-4-clause": "BSD-4-Clause",
    "expat": "MIT", "mit": "MIT", "isc": "ISC", "zlib": "Zlib", "x11": "X11",
    "apache-2": "Apache-2.0", "apache-2.0": "Apache-2.0", "apache 2.0": "Apache-2.0",
    "mpl-1.1": "MPL-1.1", "mpl-2.0": "MPL-2.0", "psf-2": "PSF-2.0", "python-2.0": "Python-2.0",
    "artistic": "Artistic-1.0-Perl", "artistic-2.0": "Artistic-2.0", "cc0-1.0": "CC0-1.0",
    "fsfullr": "FSFULLR", "fsfap": "FSFAP", "fsful": "FSFUL", "bsl-1.0": "BSL-1.0", "openssl": "OpenSSL",
    "curl": "curl", "unicode-dfs-2016": "Unicode-DFS-2016", "wtfpl": "WTFPL", "ofl-1.1": "OFL-1.1",
    "gfdl-1.2+": "GFDL-1.2-or-later", "gfdl-1.3+": "GFDL-1.3-or-later", "gfdl-1.3": "GFDL-1.3-only",
    "epl-1.0": "EPL-1.0", "epl-2.0": "EPL-2.0", "cddl-1.0": "CDDL-1.0", "0bsd": "0BSD", "unlicense": "Unlicense",
    "bzip2-1.0.6": "bzip2-1.0.6", "libpng": "Libpng", "ijg": "IJG", "tcl": "TCL", "sleepycat": "Sleepycat",
    "public-domain": "", "pd": "",
}

_KNOWN_IDS = {v for v in _MAP.values() if v}
_KNOWN_IDS.update({
    "MIT", "Apache-2.0", "BSD-2-Clause", "BSD-3-Clause", "ISC", "MPL-2.0", "LGPL-2.1-only", "LGPL-2.1-or-later",
    "GPL-2.0-only", "GPL-2.0-or-later", "GPL-3.0-only", "GPL-3.0-or-later", "Zlib", "Unlicense", "0BSD",
    "CC0-1.0", "Python-2.0", "PSF-2.0", "BlueOak-1.0.0", "Artistic-2.0", "EPL-2.0", "OpenSSL", "Ruby", "PHP-3.01",
    "MIT-0", "BSD-3-Clause-Clear", "LGPL-3.0-only", "LGPL-3.0-or-later", "AGPL-3.0-only", "AGPL-3.0-or-later",
    "CC-BY-4.0", "CC-BY-3.0", "CC-BY-SA-4.0", "Unicode-3.0", "GPL-1.0-or-later", "LGPL-2.0-or-later", "MPL-1.1",
    "BSL-1.0", "EPL-1.0", "CDDL-1.0", "CDDL-1.1", "Vim", "X11", "Sleepycat", "ICU", "NCSA", "W3C", "libtiff",
})


def normalize(name: str) -> tuple[str | None, str]:
    """(SPDX id or None, display name) for one licence token."""
    raw = name.strip().strip(",;()")
    if not raw:
        return None, ""
    key = raw.lower()
    if key in _MAP:
        spdx = _MAP[key]
        return (spdx or None), raw
    if raw in _KNOWN_IDS:
        return raw, raw
    for known in _KNOWN_IDS:
        if known.lower() == key:
            return known, raw
    return None, raw


# Licence names and URLs as Maven POMs, OSGi manifests (Bundle-License) and package metadata write them.
_NAMES = {
    "the apache software license, version 2.0": "Apache-2.0", "apache license, version 2.0": "Apache-2.0",
    "apache license 2.0": "Apache-2.0", "apache 2": "Apache-2.0", "apache-2.0 license": "Apache-2.0",
    "the mit license": "MIT", "mit license": "MIT", "eclipse public license - v 2.0": "EPL-2.0",
    "eclipse public license v2.0": "EPL-2.0", "eclipse public license - v 1.0": "EPL-1.0",
    "bsd 3-clause license": "BSD-3-Clause", "the bsd 3-clause license": "BSD-3-Clause",
    "bsd 2-clause license": "BSD-2-Clause", "gnu lesser general public license v2.1": "LGPL-2.1-only",
}
_URLS = (
    (re.compile(r"apache\.org/licenses/license-2\.0"), "Apache-2.0"),
    (re.compile(r"opensource\.org/licenses/mit(?:-license)?(?:\.php)?$"), "MIT"),
    (re.compile(r"opensource\.org/licenses/bsd-3-clause"), "BSD-3-Clause"),
    (re.compile(r"opensource\.org/licenses/bsd-2-clause"), "BSD-2-Clause"),
    (re.compile(r"eclipse\.org/legal/epl-2\.0"), "EPL-2.0"),
    (re.compile(r"eclipse\.org/legal/epl-v10"), "EPL-1.0"),
    (re.compile(r"gnu\.org/licenses/(?:old-licenses/)?lgpl-2\.1"), "LGPL-2.1-only"),
)


def normalize_name_or_url(text: str) -> str | None:
    """An SPDX id for a licence written as a full name or a URL, when it is certainly that licence."""
    raw = text.strip()
    key = raw.lower().rstrip("/")
    if key in _NAMES:
        return _NAMES[key]
    if key.startswith(("http://", "https://")):
        bare = re.sub(r"^https?://(www\.)?", "", key).removesuffix(".txt").removesuffix(".html")
        for rx, known in _URLS:
            if rx.search(bare):
                return known
        return None
    return normalize(raw)[0]


def split_expression(text: str) -> list[str]:
    """Split `A or B`, `A and B`, `A, B`, `A | B` into tokens (drops `with ... exception`). Whitespace
    runs are collapsed first: on a long run the patterns below would otherwise backtrack quadratically."""
    text = " ".join(text.split())
    text = re.sub(r"\s+with\s+[\w.+-]+\s+exception", "", text, flags=re.I)
    parts = re.split(r"\s+(?:or|and|OR|AND)\s+|\s*[,|/]\s*|\s*&\s*", text)
    return [p.strip() for p in parts if p.strip()]



