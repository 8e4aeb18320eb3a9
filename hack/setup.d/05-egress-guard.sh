#!/usr/bin/env bash
# Egress guard: test traffic must stay on this machine (loopback, or the project's own bridges and
# network namespaces). Fake pods (kwok) and Service IPs have addresses in private ranges that exist
# nowhere; a dial to one must be refused here, never sent out of the machine. This rejects packets to
# private ranges that would leave through the default-route interface. Idempotent.
set -euo pipefail
command -v iptables >/dev/null || { echo "egress guard: iptables missing, skipped"; exit 0; }
dev="$(ip route show default 2>/dev/null | awk '{for (i=1;i<NF;i++) if ($i=="dev") print $(i+1); exit}')"
[ -n "$dev" ] || { echo "egress guard: no default route, nothing to guard"; exit 0; }
chain=KUBETROVE-EGRESS-GUARD
iptables -N "$chain" 2>/dev/null || iptables -F "$chain"
# The machine's own resolvers (and anything else it is configured to use) may sit in a private range:
# they are infrastructure, not test targets, so they stay reachable.
for ns in $(awk '$1 == "nameserver" {print $2}' /etc/resolv.conf 2>/dev/null); do
  case "$ns" in *:*) ;; *) iptables -A "$chain" -d "$ns" -j RETURN ;; esac
done
for net in 10.0.0.0/8 172.16.0.0/12 192.168.0.0/16 100.64.0.0/10; do
  iptables -A "$chain" -o "$dev" -d "$net" -j REJECT
done
iptables -C OUTPUT -j "$chain" 2>/dev/null || iptables -I OUTPUT 1 -j "$chain"
echo "egress guard: private ranges refused on $dev"
