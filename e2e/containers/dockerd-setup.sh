#!/usr/bin/env bash
# Installs Debian's docker.io and starts a private dockerd for the container driver tests (its
# own data root, exec root and socket, so it never touches a system Docker), and imports a
# busybox image built from Debian's busybox-static as localhost/busybox:test.
# Idempotent: a second run only checks that everything is in place. Must run as root.
# Prints the socket path on its last line (export it as CARAVAN_TEST_DOCKERD_SOCK).
set -euo pipefail

RUN_DIR=${CARAVAN_TEST_RUN_DIR:-/run/caravan-test}
SOCK="$RUN_DIR/dockerd.sock"
DATA=${CARAVAN_TEST_DOCKERD_DATA:-/var/lib/caravan-test-dockerd}
EXEC="$RUN_DIR/dockerd-exec"
IMAGE=localhost/busybox:test
# The Debian package's binaries (a docker CLI elsewhere on PATH may be another version).
DOCKER=/usr/bin/docker
DOCKERD=/usr/sbin/dockerd

log() { echo "dockerd-setup: $*" >&2; }

if [ "$(id -u)" != 0 ]; then
    log "must run as root (dockerd)"; exit 1
fi

need=()
for p in docker.io containerd runc busybox-static iptables; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    # policy-rc.d (or no init) keeps the package's own docker service from starting.
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# cgroup v1 hosts bind hugetlb to the v2 mount on boot; dockerd's OOM reporting and stats
# want it on v1.
if [ -d /sys/fs/cgroup/memory ] && ! mountpoint -q /sys/fs/cgroup/hugetlb; then
    mkdir -p /sys/fs/cgroup/hugetlb
    mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb 2>/dev/null \
        || log "could not mount hugetlb as cgroup v1 (continuing)"
fi

mkdir -p "$RUN_DIR" "$DATA" "$EXEC"

sock_alive() {
    [ -S "$SOCK" ] && curl -fsS --max-time 2 --unix-socket "$SOCK" http://d/_ping >/dev/null 2>&1
}

if ! sock_alive; then
    rm -f "$SOCK"
    hard_nofile=$(ulimit -Hn)
    [ "$hard_nofile" = unlimited ] && hard_nofile=1048576
    [ "$hard_nofile" -gt 20000 ] && hard_nofile=20000
    echo '{}' > "$RUN_DIR/dockerd.json"
    log "starting dockerd on $SOCK (data root $DATA)"
    # A subnet of its own for docker0; the daemon's own containerd lives under the exec root.
    # From /: the daemon outlives this test run.
    (cd / && exec nohup "$DOCKERD" \
        --data-root "$DATA" --exec-root "$EXEC" --pidfile "$RUN_DIR/dockerd.pid" \
        -H "unix://$SOCK" --config-file "$RUN_DIR/dockerd.json" \
        --bip 172.31.250.1/24 \
        --default-ulimit "nofile=$hard_nofile:$hard_nofile" \
        --exec-opt native.cgroupdriver=cgroupfs \
        >"$RUN_DIR/dockerd.log" 2>&1) &
    pid=$!
    for _ in $(seq 1 200); do
        sock_alive && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    sock_alive || { log "dockerd did not come up; see $RUN_DIR/dockerd.log"; tail -20 "$RUN_DIR/dockerd.log" >&2; exit 1; }
fi

if ! "$DOCKER" -H "unix://$SOCK" image inspect "$IMAGE" >/dev/null 2>&1; then
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
    tar -C "$root" -cf "$RUN_DIR/busybox-rootfs-dockerd.tar" .
    "$DOCKER" -H "unix://$SOCK" import --change 'ENV PATH=/bin' --change 'CMD ["/bin/sh"]' \
        "$RUN_DIR/busybox-rootfs-dockerd.tar" "$IMAGE" >/dev/null
fi

echo "$SOCK"
