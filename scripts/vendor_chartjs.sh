#!/usr/bin/env bash
# Re-create static/vendor/chartjs/ from the npm registry, checking the pinned tarball's sha256.
# The files are committed so the dashboard works offline and a fresh machine needs no Node.js.
set -euo pipefail
VERSION=4.5.1
SHA256=f540d98468457ac7a0aabb32006dfb066297e096c5ea063a5d80aa973d1c337a
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack "chart.js@$VERSION" --silent >/dev/null)
echo "$SHA256  $work/chart.js-$VERSION.tgz" | sha256sum --check --quiet
tar -xzf "$work/chart.js-$VERSION.tgz" -C "$work"
cp "$work/package/dist/chart.umd.min.js" "$work/package/dist/chart.umd.min.js.map" \
   "$work/package/LICENSE.md" static/vendor/chartjs/
echo "static/vendor/chartjs/ now holds Chart.js $VERSION"
