#!/usr/bin/env bash
# cluster.sh HOSTS COMMAND... - runs COMMAND on a cluster of HOSTS simulated on this machine.
#
# Each host is a network namespace with a hostname of its own (h0, h1, ...: a UTS namespace per
# process started there), joined to the others by veth pairs to a bridge that lives in a
# namespace of its own, on a private /24 that exists only inside these namespaces: no route
# leads out of them, and Open MPI is told to use only that subnet. COMMAND runs on h0 with
#   MPROC_CLUSTER_MPIRUN  an mpirun that launches across the hosts (a launch agent in place of
#                         ssh, TCP only; pass -np and, for several ranks per host, --map-by)
#   MPROC_CLUSTER_HOSTS   the host names, space separated
# Everything is torn down on every way out (trap), also when COMMAND fails or is interrupted.
# Exits with COMMAND's status, or 77 (with the reason) where namespaces cannot be made here.
set -u
hosts=${1:?usage: cluster.sh HOSTS COMMAND...}
shift
[ $# -gt 0 ] || { echo "usage: cluster.sh HOSTS COMMAND..." >&2; exit 2; }
[ "$hosts" -ge 2 ] && [ "$hosts" -le 16 ] || { echo "cluster.sh: 2..16 hosts" >&2; exit 2; }

skip() { echo "cluster.sh: SKIP: $*" >&2; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "making network namespaces needs root"
command -v ip >/dev/null || skip "ip (iproute2) is not installed"
command -v unshare >/dev/null || skip "unshare (util-linux) is not installed"
command -v mpirun >/dev/null || skip "mpirun (openmpi-bin) is not installed"

id=$(( $$ % 200 + 20 ))            # this run's names and subnet, so runs can overlap
tag="mpc$id"
net="10.250.$id"
sw="${tag}sw"
dir=$(mktemp -d "${TMPDIR:-/tmp}/mproc-cluster.XXXXXX")
made=()

cleanup() {
    for ns in "${made[@]}"; do
        ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
        ip netns del "$ns" 2>/dev/null
        rm -rf "/etc/netns/$ns"
    done
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

ip netns add "$sw" 2>/dev/null || skip "cannot create a network namespace here (ip netns add failed)"
made+=("$sw")
ip -n "$sw" link add br0 type bridge || skip "cannot create a bridge"
ip -n "$sw" link set br0 up
names=""
hosts_file="$dir/hosts"
printf '127.0.0.1 localhost\n' >"$hosts_file"
for ((i = 0; i < hosts; i++)); do printf '%s.%d h%d\n' "$net" $((i + 1)) $i >>"$hosts_file"; done
for ((i = 0; i < hosts; i++)); do
    ns="${tag}h$i"
    ip netns add "$ns" || exit 1
    made+=("$ns")
    mkdir -p "/etc/netns/$ns"          # ip netns exec binds these over /etc/hosts and /etc/hostname
    cp "$hosts_file" "/etc/netns/$ns/hosts"
    echo "h$i" >"/etc/netns/$ns/hostname"
    ip link add "${tag}h${i}a" netns "$ns" type veth peer name "p$i" netns "$sw" || exit 1
    ip -n "$sw" link set "p$i" master br0 up
    ip -n "$ns" link set lo up
    ip -n "$ns" link set "${tag}h${i}a" name eth0
    ip -n "$ns" addr add "$net.$((i + 1))/24" dev eth0
    ip -n "$ns" link set eth0 up
    names="$names h$i"
done
names=${names# }

# Runs a command on host h<i>: its network namespace, and a UTS namespace named after it.
cat >"$dir/on_host" <<AGENT
#!/bin/sh
# on_host HOST COMMAND...: Open MPI's launch agent (in place of ssh) for the simulated hosts.
host=\$1; shift
case \$host in h[0-9]*) ;; *) echo "on_host: unknown host \$host" >&2; exit 255 ;; esac
exec ip netns exec "${tag}\$host" unshare --uts sh -c 'hostname "\$0" && exec sh -c "\$1"' "\$host" "\$*"
AGENT
chmod +x "$dir/on_host"
slots=64
for h in $names; do echo "$h slots=$slots"; done >"$dir/hostfile"
cat >"$dir/mpirun" <<RUN
#!/bin/sh
# mpirun across the simulated hosts: TCP only, and only on their subnet.
exec mpirun --allow-run-as-root --hostfile "$dir/hostfile" --map-by node \\
    --mca plm_rsh_agent "$dir/on_host" --mca plm_rsh_no_tree_spawn 1 \\
    --mca btl tcp,self --mca btl_tcp_if_include $net.0/24 --mca oob_tcp_if_include $net.0/24 "\$@"
RUN
chmod +x "$dir/mpirun"

# Wait until every host's link is up (veths come up asynchronously; an address is usable
# once the link is, as duplicate address detection does not apply to IPv4).
for ((i = 0; i < hosts; i++)); do
    for ((k = 0; k < 50; k++)); do
        ip -n "${tag}h$i" -o link show eth0 | grep -q 'LOWER_UP' && break
        sleep 0.1
    done
done

# In the background, so that a signal to this script tears the cluster down at once.
MPROC_CLUSTER_MPIRUN="$dir/mpirun" MPROC_CLUSTER_HOSTS="$names" \
    ip netns exec "${tag}h0" unshare --uts sh -c 'hostname h0 && exec "$@"' sh "$@" &
child=$!
trap 'kill -TERM $child 2>/dev/null; exit 130' INT TERM HUP
wait $child
