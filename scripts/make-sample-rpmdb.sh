#!/usr/bin/env bash
# Rebuild src/vouch/testbed/data/rpmdb.sqlite.gz: the rpm database of the demo's rpm-based sample
# images, made by the real tools (rpmbuild builds four small packages, rpm installs them into a root).
# Run it only to change the sample packages; the result is committed so the demo needs no rpm.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v rpmbuild >/dev/null || { apt-get update -qq && apt-get install -y -qq rpm >/dev/null; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
mkdir -p "$work/top/SPECS" "$work/root"
spec() {  # name version release license arch path [requires]
  cat > "$work/top/SPECS/$1.spec" <<SPEC
Name: $1
Version: $2
Release: $3
License: $4
Summary: vouch sample package $1 (demo data, not a real distribution package)
BuildArch: $5
AutoReqProv: no
${7:+Requires: $7}

%description
vouch sample package $1

%install
mkdir -p %{buildroot}$(dirname "$6")
echo $1 > %{buildroot}$6

%files
$6
SPEC
  rpmbuild -bb --define "_topdir $work/top" --define "_build_id_links none" \
    --define "source_date_epoch_from_changelog 0" --define "use_source_date_epoch_as_buildtime 1" \
    "$work/top/SPECS/$1.spec" >/dev/null 2>&1
}
export SOURCE_DATE_EPOCH=1767225600
spec akko-sample-release 9.4 1.el9 MIT noarch /etc/akko-sample-release
spec akko-sample-libdemo 1.2.3 4.el9 MIT x86_64 /usr/lib/libdemo.so.1
spec akko-sample-openssl-libs 3.0.7 27.el9 Apache-2.0 x86_64 /usr/lib64/libssl.so.3 akko-sample-libdemo
spec akko-sample-tzdata 2024a 1.el9 "Public Domain" noarch /usr/share/zoneinfo/UTC
rpm --root "$work/root" --dbpath /var/lib/rpm --initdb
rpm --root "$work/root" --dbpath /var/lib/rpm -i --nodeps --noscripts --ignorearch --ignoreos \
  "$work"/top/RPMS/*/*.rpm
rpm --root "$work/root" --dbpath /var/lib/rpm -qa --qf '%{NAME} %{VERSION}-%{RELEASE} %{ARCH}\n' | sort
sqlite3_db="$work/root/var/lib/rpm/rpmdb.sqlite"
python3 - "$sqlite3_db" <<'PY'
import gzip, sqlite3, sys
path = sys.argv[1]
conn = sqlite3.connect(path)
conn.execute("VACUUM")  # compact: the committed copy is small
conn.close()
data = open(path, "rb").read()
with open("src/vouch/testbed/data/rpmdb.sqlite.gz", "wb") as f:
    f.write(gzip.compress(data, mtime=0))
print(f"rpmdb.sqlite: {len(data)} bytes, gzipped {len(gzip.compress(data, mtime=0))}")
PY
