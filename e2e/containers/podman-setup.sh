#!/usr/bin/env bash
# Installs and starts Podman's Docker-compatible API service for the container driver tests,
# and imports a busybox image built from Debian's busybox-static as localhost/busybox:test.
# Idempotent: a second run only checks that everything is in place. Must run as root.
# Prints the socket path on its last line (export it as CARAVAN_TEST_DOCKER_SOCK).
set -euo pipefail

RUN_DIR=${CARAVAN_TEST_RUN_DIR:-/run/caravan-test}
SOCK="$RUN_DIR/podman.sock"
CONF="$RUN_DIR/containers.conf"
IMAGE=localhost/busybox:test

log() { echo "podman-setup: $*" >&2; }

if [ "$(id -u)" != 0 ]; then
    log "must run as root (rootful podman)"; exit 1
fi

need=()
for p in podman runc containernetworking-plugins busybox-static iptables nftables uidmap; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# cgroup v1 hosts bind hugetlb to the v2 mount on boot; runc/crun and stats want it on v1.
if [ -d /sys/fs/cgroup/memory ] && ! mountpoint -q /sys/fs/cgroup/hugetlb; then
    mkdir -p /sys/fs/cgroup/hugetlb
    mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb 2>/dev/null \
        || log "could not mount hugetlb as cgroup v1 (continuing)"
fi

mkdir -p "$RUN_DIR"
hard_nofile=$(ulimit -Hn)
[ "$hard_nofile" = unlimited ] && hard_nofile=1048576
[ "$hard_nofile" -gt 20000 ] && hard_nofile=20000
cat > "$CONF.new" <<CONF
[containers]
default_ulimits = ["nofile=$hard_nofile:$hard_nofile", "nproc=4096:4096"]
log_driver = "k8s-file"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
mv "$CONF.new" "$CONF"
export CONTAINERS_CONF="$CONF"

sock_alive() {
    [ -S "$SOCK" ] && curl -fsS --max-time 2 --unix-socket "$SOCK" http://d/_ping >/dev/null 2>&1
}

if ! sock_alive; then
    rm -f "$SOCK"
    log "starting podman system service on $SOCK"
    # From /: the service outlives this test run, and conmon fails every container start
    # ("Failed to get working directory") once the directory it was started in is removed.
    (cd / && exec nohup podman system service --time=0 "unix://$SOCK" >"$RUN_DIR/podman-service.log" 2>&1) &
    echo $! > "$RUN_DIR/podman-service.pid"
    for _ in $(seq 1 100); do
        sock_alive && break
        sleep 0.1
    done
    sock_alive || { log "service did not come up; see $RUN_DIR/podman-service.log"; tail -20 "$RUN_DIR/podman-service.log" >&2; exit 1; }
fi

if ! podman image exists "$IMAGE"; then
    log "building $IMAGE from busybox-static"
    root=$(mktemp -d)
    trap 'rm -rf "$root"' EXIT
    mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/var/www" "$root/root"
    chmod 1777 "$root/tmp"
    cp /bin/busybox "$root/bin/busybox"
    for applet in $("$root/bin/busybox" --list); do
        [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
    tar -C "$root" -cf "$RUN_DIR/busybox-rootfs.tar" .
    podman import -q --change 'ENV PATH=/bin' --change 'CMD ["/bin/sh"]' \
        "$RUN_DIR/busybox-rootfs.tar" "$IMAGE" >/dev/null
fi

echo "$SOCK"
