// Stand-ins and benchmark receivers listen on the loopback interface, which the outbound policy
// refuses by default: tests and benchmarks that call them allow it explicitly, and tests that
// attack the policy leave it out.
import { parseIpNetworkList } from '../../src/domain/ip-address.js';
import { OutboundPolicy } from '../../src/domain/outbound-policy.js';

/** The value of OUTBOUND_ALLOWED_NETWORKS that lets Herald call loopback receivers. */
export const loopbackNetworks = '127.0.0.0/8,::1/128';

/** The policy provider unit tests build their adapters with. */
export const loopbackAllowed = new OutboundPolicy(parseIpNetworkList(loopbackNetworks).networks);
