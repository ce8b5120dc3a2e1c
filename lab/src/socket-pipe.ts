// Joins two sockets both ways; when either ends or fails, both are destroyed.
import type { Socket } from 'node:net';

export function joinSockets(a: Socket, b: Socket, onClose?: () => void): void {
  let closed = false;
  const close = (): void => {
    a.destroy();
    b.destroy();
    if (!closed) {
      closed = true;
      onClose?.();
    }
  };
  for (const s of [a, b]) {
    s.on('error', close);
    s.on('close', close);
  }
  a.pipe(b);
  b.pipe(a);
}
