/**
 * PROXY protocol v1 and v2 on the IMAP listeners (POSTMESH_PROXY_PROTOCOL=true, behind a TCP load
 * balancer such as an AWS NLB, which sends v2). The parser and socket reader are shared with
 * smtp-inbound in @postmesh/runtime (haproxy.org proxy-protocol.txt §2.1, §2.2).
 */
export {
  parseProxyHeader,
  readProxyHeader,
  type ProxiedConnection,
  type ProxyHeader,
  type ProxyParse,
} from '@postmesh/runtime';
