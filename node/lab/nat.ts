/** The lab routers' nftables ruleset (loaded with `nft -f -` inside each router namespace). */

/**
 * The router's firewall: masquerade out of the WAN leg (Linux keeps the source port when it is
 * free, which gives endpoint-independent mapping in practice); forward only LAN-originated flows
 * and their replies; and drop new inbound flows on the WAN in prerouting, before conntrack confirms
 * them. Without that last rule, a hole-punch packet that arrives before our own outbound one leaves
 * a conntrack entry that collides with the outbound mapping, and masquerade picks another port.
 * `lossPct` drops that share of packets in each direction on the WAN leg (nftables `numgen`, so it
 * needs no netem).
 */
export function natRuleset (wan: string, lossPct = 0): string {
  const loss = lossPct > 0 ? `numgen random mod 10000 < ${Math.round(lossPct * 100)} drop` : ''
  return `table ip amlab {
  chain wan_in_loss {
    type filter hook prerouting priority -300; policy accept;
    ${loss === '' ? '' : `iifname "${wan}" ${loss}`}
  }
  chain wan_in {
    type filter hook prerouting priority -150; policy accept;
    iifname "${wan}" ct state new,invalid drop
  }
  chain lan_out {
    type filter hook forward priority 0; policy drop;
    ct state established,related accept
    iifname != "${wan}" accept
  }
  chain masq {
    type nat hook postrouting priority 100; policy accept;
    oifname "${wan}" masquerade
  }
  chain wan_out_loss {
    type filter hook postrouting priority 300; policy accept;
    ${loss === '' ? '' : `oifname "${wan}" ${loss}`}
  }
}
`
}
