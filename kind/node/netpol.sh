#!/usr/bin/env bash
# The cluster's NetworkPolicy enforcer: ingress rules, with iptables.
#
# Why not kube-network-policies (what kind's kindnetd embeds)? It hands
# packets to user space with nftables' `queue` statement, and kernels built
# without CONFIG_NFT_QUEUE (this machine's among them) refuse that rule, so
# it cannot run here. This loop implements the part of the API our tests use,
# the way the usual enforcers do it:
#
#  - a pod selected by a policy with policyTypes Ingress takes new
#    connections only from the peers its rules allow (podSelector,
#    namespaceSelector, ipBlock; matchLabels and matchExpressions) on the
#    ports they name; everything else to it is dropped;
#  - connections already established are left alone, as by every enforcer;
#  - Egress rules are not enforced (a warning says so once).
#
#   netpol.sh KUBECONFIG     # runs until killed; rebuilds its chain when
#                            # pods or policies change (polls every second)
set -euo pipefail

KUBECONFIG_FILE=${1:?usage: netpol.sh KUBECONFIG}
CHAIN=WC-NETPOL

kc() { kubectl --kubeconfig "$KUBECONFIG_FILE" --request-timeout=5s "$@"; }

# iptables-restore input for the whole chain, from the pods and policies.
# shellcheck disable=SC2016 # jq's $variables
RULES='
def selects($labels):
  ((.matchLabels // {}) | to_entries | all(. as $e | $labels[$e.key] == $e.value)) and
  ((.matchExpressions // []) | all(. as $x | $labels[$x.key] as $v |
     if $x.operator == "In" then ($v != null and ($x.values | index($v)) != null)
     elif $x.operator == "NotIn" then ($v == null or ($x.values | index($v)) == null)
     elif $x.operator == "Exists" then $v != null
     elif $x.operator == "DoesNotExist" then $v == null
     else false end));
($pods | map(select(.status.podIP != null and (.spec.hostNetwork | not)))) as $pods |
($nss | map({key: .metadata.name, value: (.metadata.labels // {})}) | from_entries) as $nslabels |
[ $policies[] | select(.spec.policyTypes // ["Ingress"] | index("Ingress")) | . as $pol |
  $pods[] | (.metadata.labels // {}) as $l |
  select(.metadata.namespace == $pol.metadata.namespace and ($pol.spec.podSelector | selects($l))) |
  .status.podIP as $dst |
  ( "-A \($chain) -d \($dst) -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN",
    ( $pol.spec.ingress // [] | .[] | . as $rule |
      ( if ($rule.from // []) == [] then [null]
        else [ $rule.from[] | . as $peer |
          if $peer.ipBlock then $peer.ipBlock.cidr
          else $pods[] | (.metadata.labels // {}) as $l | ($nslabels[.metadata.namespace] // {}) as $n |
            select(
              (if $peer.namespaceSelector then ($peer.namespaceSelector | selects($n))
               else .metadata.namespace == $pol.metadata.namespace end) and
              ($peer.podSelector // {} | selects($l))) | .status.podIP
          end ] end ) as $sources |
      ( if ($rule.ports // []) == [] then [null] else $rule.ports end ) as $ports |
      $sources[] as $src | $ports[] as $port |
      "-A \($chain)" + (if $src then " -s \($src)" else "" end) + " -d \($dst)" +
        (if $port then " -p \(($port.protocol // "TCP") | ascii_downcase) --dport \($port.port)" else "" end) +
        " -j RETURN" ),
    "-A \($chain) -d \($dst) -j DROP" )
] |
# Policies add up: every allowed source of every policy before any drop.
map(select(endswith("-j DROP") | not)) + map(select(endswith("-j DROP"))) |
[foreach .[] as $r ({}; .[$r] += 1; select(.[$r] == 1) | $r)] | .[]'

warned_egress=0
last=
while :; do
  if pods=$(kc get pods -A -o json) && policies=$(kc get networkpolicies -A -o json) &&
    nss=$(kc get namespaces -o json); then
    # On stdin, not as arguments: a cluster's pods outgrow an argument's
    # 128 KiB limit.
    rules=$(printf '%s\n' "$pods" "$policies" "$nss" | jq -nr --arg chain "$CHAIN" \
      "input.items as \$pods | input.items as \$policies | input.items as \$nss | $RULES")
    if ((!warned_egress)) && jq -e '[.items[] | select(.spec.policyTypes // [] | index("Egress"))] | length > 0' \
      <<<"$policies" >/dev/null; then
      echo "netpol: warning: Egress rules are not enforced" >&2
      warned_egress=1
    fi
    if [[ $rules != "$last" ]]; then
      # One transaction: the chain is flushed and refilled atomically.
      printf '*filter\n:%s - [0:0]\n%s\nCOMMIT\n' "$CHAIN" "$rules" | sed '/^$/d' |
        iptables-restore --noflush
      iptables -C FORWARD -j "$CHAIN" 2>/dev/null || iptables -I FORWARD 1 -j "$CHAIN"
      echo "netpol: $(grep -c -- '-j DROP' <<<"$rules" || true) pods isolated" >&2
      last=$rules
    fi
  fi
  sleep 1
done
