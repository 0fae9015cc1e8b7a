"""Reach a Lifeline console with a Python SSH library, as automation does.

usage: python-ssh.py paramiko|asyncssh HOST PORT USER KEYFILE HOSTKEY_SHA256 COMMAND EXPECT

Pins the host key by its SHA256 fingerprint, opens a shell with a pty, waits for the prompt,
runs COMMAND and waits for EXPECT in the output. Prints one JSON line (the negotiated cipher and
MAC) and exits 0 on success; anything else is an error on stderr and exit 1.
"""
import asyncio
import base64
import hashlib
import json
import re
import socket
import sys
import time

library, host, port, user, keyfile, hostkey, command, expect = sys.argv[1:9]
port = int(port)
DEADLINE = 60


def fingerprint(blob):
    return 'SHA256:' + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip('=')


def with_paramiko():
    import paramiko
    transport = paramiko.Transport(socket.create_connection((host, port), timeout=DEADLINE))
    try:
        transport.start_client(timeout=DEADLINE)
        seen = fingerprint(transport.get_remote_server_key().asbytes())
        if seen != hostkey:
            raise SystemExit(f'host key {seen} is not the pinned {hostkey}')
        transport.auth_publickey(user, paramiko.Ed25519Key.from_private_key_file(keyfile))
        channel = transport.open_session()
        channel.get_pty(term='xterm', width=80, height=24)
        channel.invoke_shell()
        channel.settimeout(1)
        output = ''

        def wait_for(pattern):
            nonlocal output
            end = time.time() + DEADLINE
            while not re.search(pattern, output):
                if time.time() > end:
                    raise SystemExit(f'no {pattern!r} in {output[-300:]!r}')
                try:
                    output += channel.recv(4096).decode('latin1')
                except socket.timeout:
                    pass

        channel.send('\r')
        wait_for(r'# ')
        channel.send(command + '\r')
        wait_for(expect)
        return {'cipher': transport.remote_cipher, 'mac': transport.remote_mac}
    finally:
        transport.close()


async def with_asyncssh():
    import asyncssh
    async with asyncssh.connect(host, port, username=user, client_keys=[keyfile], known_hosts=None,
                                agent_path=None, connect_timeout=DEADLINE) as connection:
        seen = connection.get_server_host_key().get_fingerprint('sha256')
        if seen != hostkey:
            raise SystemExit(f'host key {seen} is not the pinned {hostkey}')
        process = await connection.create_process(term_type='xterm', term_size=(80, 24), encoding='latin1')
        output = ''

        async def wait_for(pattern):
            nonlocal output
            end = time.time() + DEADLINE
            while not re.search(pattern, output):
                if time.time() > end:
                    raise SystemExit(f'no {pattern!r} in {output[-300:]!r}')
                try:
                    output += await asyncio.wait_for(process.stdout.read(4096), 1)
                except asyncio.TimeoutError:
                    pass

        process.stdin.write('\r')
        await wait_for(r'# ')
        process.stdin.write(command + '\r')
        await wait_for(expect)
        result = {'cipher': connection.get_extra_info('send_cipher'), 'mac': connection.get_extra_info('send_mac')}
        process.close()
        return result


negotiated = with_paramiko() if library == 'paramiko' else asyncio.run(with_asyncssh())
print(json.dumps(negotiated))
