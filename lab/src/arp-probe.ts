// Runs inside a namespace: sends one ARP request "who has TARGET" from IFACE and prints,
// as JSON, the distinct MACs that answered within TIMEOUT_MS. Counts how many nodes
// answer for an address, as `arping` would. Usage: arp-probe.ts IFACE SENDER_IP TARGET_IP TIMEOUT_MS
import { readFileSync } from 'node:fs';
import { parseArpFrame, ARP_REPLY } from '@purelb/linux-net';
import { PacketCapture, PacketSender } from '@purelb/linux-net/testing';

const [iface = 'eth0', senderIp = '', targetIp = '', timeoutText = '1000'] = process.argv.slice(2);
const ifindex = Number(readFileSync(`/sys/class/net/${iface}/ifindex`, 'utf8'));
const mac = readFileSync(`/sys/class/net/${iface}/address`, 'utf8').trim().split(':').map((h) => parseInt(h, 16));
const ip4 = (s: string): number[] => s.split('.').map(Number);

const frame = Buffer.from([
  ...[0xff, 0xff, 0xff, 0xff, 0xff, 0xff], ...mac, 0x08, 0x06, // Ethernet: broadcast, from us, ARP
  0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01, // Ethernet/IPv4, request
  ...mac, ...ip4(senderIp), // sender
  0, 0, 0, 0, 0, 0, ...ip4(targetIp), // target
]);
const capture = new PacketCapture(ifindex);
const sender = new PacketSender();
sender.send(ifindex, frame);
const macs = new Set<string>();
const deadline = Date.now() + Number(timeoutText);
const hex = (b: Uint8Array): string => [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
for (let i = 0; i < 10_000 && Date.now() < deadline; i++) {
  const next = await Promise.race([capture.next(), new Promise<undefined>((r) => setTimeout(() => r(undefined), Math.max(1, deadline - Date.now())))]);
  if (!next) continue;
  const arp = parseArpFrame(next.frame);
  if (arp && arp.op === ARP_REPLY && arp.senderIp.join('.') === targetIp) macs.add(hex(arp.senderMac));
}
sender.close();
await capture.close();
process.stdout.write(JSON.stringify([...macs].sort()));
process.exit(0);
