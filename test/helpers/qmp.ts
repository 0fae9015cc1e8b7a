import { connect } from 'node:net';

/** Runs one QMP command on a QEMU monitor socket (the test's own connection) and returns its result. */
export function qmp(path: string, execute: string, args?: Record<string, unknown>): Promise<any> {
  return new Promise((resolve, reject) => {
    const socket = connect({ path });
    let buffer = '';
    let stage = 0;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`QMP ${execute} timed out`));
    }, 10_000);
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.on('data', (data) => {
      buffer += data.toString();
      let newline: number;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const message = JSON.parse(buffer.slice(0, newline)) as Record<string, any>;
        buffer = buffer.slice(newline + 1);
        if (message.event) continue;
        if (stage === 0) socket.write(`${JSON.stringify({ execute: 'qmp_capabilities' })}\n`);
        else if (stage === 1) socket.write(`${JSON.stringify({ execute, ...(args && { arguments: args }) })}\n`);
        else {
          clearTimeout(timer);
          socket.end();
          if (message.error) reject(new Error(JSON.stringify(message.error)));
          else resolve(message.return);
        }
        stage++;
      }
    });
  });
}
