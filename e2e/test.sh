#!/usr/bin/env bash
# Installs what the default test run needs on a fresh Debian machine (as root) and runs every
# test of the workspace: unit tests, API tests against an in-process agent, and the e2e tests in
# e2e/ that drive the real binary. Slow soak and scale runs are not part of it (see README).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v cc >/dev/null 2>&1 || need_apt+=(gcc libc6-dev)
command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
command -v sleep >/dev/null 2>&1 || need_apt+=(coreutils)
# Artifact getters: git over ssh against a loopback sshd, hg:: through the hg CLI.
command -v git >/dev/null 2>&1 || need_apt+=(git)
[ -x /usr/sbin/sshd ] || need_apt+=(openssh-server openssh-client)
command -v hg >/dev/null 2>&1 || need_apt+=(mercurial)
# Docker driver: Debian's dockerd beside Podman, a loopback registry with htpasswd auth, skopeo
# to push into it.
[ -x /usr/sbin/dockerd ] || need_apt+=(docker.io)
[ -x /usr/bin/docker-registry ] || need_apt+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || need_apt+=(skopeo)
command -v htpasswd >/dev/null 2>&1 || need_apt+=(apache2-utils)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
  else
    echo "missing: ${need_apt[*]} (run as root or install them)" >&2
    exit 1
  fi
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is required (Rust 1.80 or newer); install a Rust toolchain first" >&2
  exit 1
fi

# One build shared by unit and e2e tests.
cargo build --workspace --all-targets --locked
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi
