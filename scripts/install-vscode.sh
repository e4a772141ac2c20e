#!/usr/bin/env bash
# Installs code-server (a real VS Code served to a browser) for the end-to-end tests
# and the demo, using only the npm registry and Debian packages.
#
#   scripts/install-vscode.sh          install if needed, print the entry point
#
# Result: .vscode-test/code-server-$VERSION/package/out/node/entry.js
# Re-running is cheap: a marker written after a successful install short-circuits
# everything while the Node ABI the native modules were compiled for is unchanged.
set -euo pipefail

# 4.100.x is the last code-server line whose server runs on Node 20.
VERSION=4.100.3
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE="$ROOT/.vscode-test"
DIR="$CACHE/code-server-$VERSION"
PKG="$DIR/package"
ENTRY="$PKG/out/node/entry.js"
MARKER="$DIR/.installed"

log() { printf '[install-vscode] %s\n' "$*" >&2; }

NODE_ABI=$(node -p process.versions.modules)

# The entry point must load, not just exist on disk.
self_check() {
  local out
  out=$(node "$ENTRY" --version 2>/dev/null) || return 1
  # The first run on a machine also says that it wrote a default config file.
  grep -q "^$VERSION " <<<"$out"
}

if [ -f "$MARKER" ] && [ "$(cat "$MARKER")" = "$NODE_ABI" ] && [ -f "$ENTRY" ] && self_check; then
  echo "$ENTRY"
  exit 0
fi

# Native modules need headers; search needs ripgrep; the tests need a browser.
DEB_PACKAGES="chromium ripgrep libkrb5-dev libsecret-1-dev libxkbfile-dev pkg-config python3 make g++"
missing=""
for p in $DEB_PACKAGES; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing Debian packages:$missing"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  else
    log "missing Debian packages:$missing"
    log "install them first, e.g.: sudo apt-get install$missing"
    exit 1
  fi
fi

start=$(date +%s)
mkdir -p "$DIR"
cd "$DIR"
rm -f "$MARKER"

tarball="code-server-$VERSION.tgz"
if [ ! -f "$tarball" ]; then
  log "downloading code-server $VERSION from the npm registry"
  npm pack --silent "code-server@$VERSION" >/dev/null
fi
rm -rf package
tar xzf "$tarball"

# code-server's install scripts fetch prebuilt binaries from hosts outside the npm
# registry; skip every script and compile the native modules locally instead.
quiet_npm() { npm "$@" --no-audit --no-fund --loglevel=error >/dev/null; }

cd "$PKG"
log "installing server dependencies"
quiet_npm install --omit=dev --ignore-scripts
npm_config_yes=true quiet_npm rebuild argon2

cd "$PKG/lib/vscode"
log "installing VS Code dependencies and compiling native modules (slow)"
quiet_npm install --omit=dev --ignore-scripts
npm_config_yes=true quiet_npm rebuild node-pty @vscode/spdlog native-watchdog kerberos @parcel/watcher @vscode/deviceid

# The bundled ripgrep would normally be downloaded by a postinstall script.
mkdir -p node_modules/@vscode/ripgrep/bin
cp "$(command -v rg)" node_modules/@vscode/ripgrep/bin/rg
# VS Code resolves modules through node_modules.asar in a packaged build.
ln -sfn node_modules node_modules.asar
# Helper names the server looks for that the npm package only ships as templates.
ln -sfn code-linux.sh bin/remote-cli/code-server
ln -sfn browser-linux.sh bin/helpers/browser.sh

cd "$PKG/lib/vscode/extensions"
log "installing built-in extension dependencies"
quiet_npm install --omit=dev --ignore-scripts

if ! self_check; then
  log "code-server was installed but does not start: node $ENTRY --version"
  node "$ENTRY" --version >&2 || true
  exit 1
fi
echo "$NODE_ABI" > "$MARKER"
log "installed code-server $VERSION in $(( $(date +%s) - start ))s"
echo "$ENTRY"
