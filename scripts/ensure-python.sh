#!/usr/bin/env bash
# The interop tests load RepLens' output into real PyTorch: Debian's python3-torch
# and python3-onnx, used through /usr/bin/python3. Installs them when run as root.
set -euo pipefail
need=()
for pkg in python3-torch python3-onnx python3-numpy; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "RepLens interop tests need these Debian packages: ${need[*]}" >&2
  echo "Install them with: sudo apt-get install ${need[*]}" >&2
  exit 1
fi
echo "Installing ${need[*]} (for the PyTorch interop tests)…"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
