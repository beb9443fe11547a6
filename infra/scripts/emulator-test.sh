#!/usr/bin/env bash
# The emulator deployment test: builds every function and `shop` (host
# architecture, dev profile: `cargo test` already built their dependencies,
# a release build would cost CI ~18 minutes), then deploys infra/template.yaml
# to ministack with CloudFormation and runs the end-to-end scenario
# (infra/emulator/deploy_test.py).
# Python dependencies (pinned in infra/emulator/requirements.txt) live in their
# own venv: ministack pins botocore exactly.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV="${SHOP_EMULATOR_VENV:-$HOME/.cache/shop/emulator-venv}"
REQ=infra/emulator/requirements.txt
if [ ! -x "$VENV/bin/python" ] || ! cmp -s "$REQ" "$VENV/requirements.txt"; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQ"
  cp "$REQ" "$VENV/requirements.txt"
fi
packages=(-p shop-local)
for f in functions/*/; do packages+=(-p "$(basename "$f")"); done
echo "building ${#packages[@]} packages (dev profile, $(uname -m))"
cargo build --locked "${packages[@]}"
ls -l target/debug/ | awk '$1 ~ /^-rwx/ {printf "  %-20s %6.1f MB\n", $9, $5/1e6}'
if [ -n "${SHOP_EMULATOR_WORKDIR:-}" ]; then
  WORK="$SHOP_EMULATOR_WORKDIR"            # kept: the emulators' logs
else
  WORK="$(mktemp -d)"
  trap 'rm -rf "$WORK"' EXIT
fi
"$VENV/bin/python" infra/emulator/deploy_test.py --bin-dir target/debug --workdir "$WORK"
