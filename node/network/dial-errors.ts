/** Dial failures in words a user can act on. */
export function explainDialError (err: Error): string {
  const text = `${(err as NodeJS.ErrnoException).code ?? ''} ${err.name} ${err.message}`
  if (text.includes('ECONNREFUSED')) return 'connection refused: nothing is listening there — start that peer first or check the port'
  if (text.includes('Abort') || text.includes('Timeout')) return 'timed out: the peer did not answer — check the address and your network'
  if (text.includes('UnexpectedPeer') || text.includes('unexpected peer')) return 'a different peer answered at that address — check the /p2p/ peer id'
  if (text.includes('self')) return 'that address is this peer itself'
  if (text.includes('EHOSTUNREACH') || text.includes('ENETUNREACH')) return 'no route to that host — check the address, or your network connection'
  if (text.includes('ENOTFOUND') || text.includes('EAI_AGAIN')) return 'the host name did not resolve — check the DNS name'
  if (text.includes('psk') || text.includes('pnet') || text.includes('nonce') || (text.includes('handshake') && text.includes('noise'))) return 'the secure handshake failed: a private network with another key (psk), or not an agentmesh peer'
  if (text.includes('gater') || text.includes('denied')) return 'refused by this peer\'s gater: that peer belongs to another network, lacks the network\'s proof of work on its id, or was banned for misbehaving'
  return err.message
}
