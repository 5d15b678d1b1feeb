/**
 * Type tests for the wire-protocol options: compiled by `tsc --noEmit` in `npm test`, never run.
 * Each `@ts-expect-error` line must fail to compile, or the build fails.
 */
import { QAMProxy, QAMServer, type WireProtocol } from '../../lib/index.js';

export function protocolOptions(): void {
  new QAMServer({ serverId: 's', protocol: 'qam' });
  new QAMServer({ serverId: 's', protocol: ['native', 'qam'] satisfies WireProtocol[] });
  new QAMProxy({ serverId: 's', protocol: 'qam', clientId: 'billing-1' });
  new QAMProxy({ serverId: 's', replies: 'callme', ssl: { ca: 'PEM', cert: 'PEM', key: 'PEM', servername: 'rabbit' } });
  // @ts-expect-error QAM's pickle format is not spoken
  new QAMServer({ serverId: 's', protocol: 'pickle' });
  // @ts-expect-error a proxy speaks one protocol
  new QAMProxy({ serverId: 's', protocol: ['native', 'qam'] });
  // @ts-expect-error replies come by direct reply-to or callme's names
  new QAMProxy({ serverId: 's', replies: 'queue' });
}
