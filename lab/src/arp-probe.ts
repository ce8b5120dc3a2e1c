// Runs inside a namespace.
//   arp-probe.ts IFACE SENDER_IP TARGET_IP TIMEOUT_MS
//     sends one ARP request "who has TARGET" from IFACE and prints, as JSON, the distinct
//     MACs that answered within TIMEOUT_MS: how many nodes answer, as `arping` would count.
//   arp-probe.ts --listen IFACE ADDRESS TIMEOUT_MS
//     prints "listening", then one line "MAC MS" for every gratuitous ARP (sender and
//     target both ADDRESS) heard within TIMEOUT_MS, MS being the capture time.
import { readFileSync } from 'node:fs';
import { parseArpFrame, ARP_REPLY } from '@purelb/linux-net';
import { PacketCapture, PacketSender } from '@purelb/linux-net/testing';

const listen = process.argv[2] === '--listen';
const args = process.argv.slice(listen ? 3 : 2);
const [iface = 'eth0'] = args;
const [senderIp = '', targetIp = '', timeoutText = '1000'] = listen ? ['', args[1] ?? '', args[2] ?? '1000'] : args.slice(1);
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
if (listen) console.log('listening');
else sender.send(ifindex, frame);
const macs = new Set<string>();
const deadline = Date.now() + Number(timeoutText);
const hex = (b: Uint8Array): string => [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
for (let i = 0; i < 10_000 && Date.now() < deadline; i++) {
  const next = await Promise.race([capture.next(), new Promise<undefined>((r) => setTimeout(() => r(undefined), Math.max(1, deadline - Date.now())))]);
  if (!next) continue;
  const arp = parseArpFrame(next.frame);
  if (!arp || arp.senderIp.join('.') !== targetIp) continue;
  if (listen && arp.targetIp.join('.') === targetIp) console.log(`${hex(arp.senderMac)} ${next.receivedAtMs}`);
  if (!listen && arp.op === ARP_REPLY) macs.add(hex(arp.senderMac));
}
sender.close();
await capture.close();
if (!listen) process.stdout.write(JSON.stringify([...macs].sort()));
process.exit(0);
