"""COMPRESS=DEFLATE (RFC 4978) from Python's zlib over a raw socket (optionally TLS).

Usage: compress_check.py HOST PORT USER PASSWORD TLS(0|1)

Logs in, turns on COMPRESS DEFLATE, then talks raw DEFLATE (RFC 1951, no zlib header, each
command flushed with Z_SYNC_FLUSH) in both directions: SELECT, APPEND, FETCH, IDLE (prints
"IDLING" and waits for the message the test delivers meanwhile), LOGOUT. Every server byte after
the COMPRESS OK is decompressed and written to stdout between TRANSCRIPT markers, so the test can
compare it exactly. Exits 1 with a message on a protocol failure or a timeout.
"""

import socket
import ssl
import sys
import zlib

host, port, user, password, use_tls = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5] == "1"

raw = socket.create_connection((host, port), timeout=20)
if use_tls:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    raw = context.wrap_socket(raw)

buffer = b""
compressed = False
inflater = zlib.decompressobj(wbits=-15)
deflater = zlib.compressobj(wbits=-15)
transcript = []


def fail(message):
    sys.stdout.write("FAIL " + message + "\n")
    sys.stdout.write("received so far: " + repr(b"".join(transcript) + buffer) + "\n")
    sys.exit(1)


def receive():
    global buffer
    try:
        chunk = raw.recv(65536)
    except socket.timeout:
        fail("timeout")
    if not chunk:
        fail("connection closed")
    buffer += inflater.decompress(chunk) if compressed else chunk


def read_until(marker):
    """Everything up to and including the first line that starts with `marker`."""
    global buffer
    start = 0
    while True:
        while b"\r\n" not in buffer[start:]:
            receive()
        end = buffer.index(b"\r\n", start) + 2
        line = buffer[start:end]
        if line.startswith(marker):
            out = buffer[:end]
            buffer = buffer[end:]
            if compressed:
                transcript.append(out)
            return out
        start = end


def send(data):
    if compressed:
        data = deflater.compress(data) + deflater.flush(zlib.Z_SYNC_FLUSH)
    raw.sendall(data)


read_until(b"* OK")
send(("a1 LOGIN %s \"%s\"\r\n" % (user, password)).encode())
if not read_until(b"a1 ").startswith(b"a1 OK"):
    fail("login")
send(b"a2 COMPRESS DEFLATE\r\n")
if read_until(b"a2 ") != b"a2 OK DEFLATE active\r\n":
    fail("COMPRESS")
compressed = True

send(b"a3 COMPRESS DEFLATE\r\n")
read_until(b"a3 ")
send(b"a4 SELECT INBOX\r\n")
read_until(b"a4 ")
message = b"From: a@example.org\r\nSubject: squeezed\r\n\r\n" + b"compressible line\r\n" * 200
send(b"a5 APPEND INBOX {%d+}\r\n" % len(message) + message + b"\r\n")
read_until(b"a5 ")
send(b"a6 FETCH 1 (RFC822.SIZE BODY.PEEK[])\r\n")
fetched = read_until(b"a6 ")
if message not in fetched:
    fail("FETCH did not return the message")
send(b"a7 IDLE\r\n")
read_until(b"+ ")
sys.stdout.write("IDLING\n")
sys.stdout.flush()
read_until(b"* 2 RECENT")
send(b"DONE\r\n")
read_until(b"a7 ")
send(b"a8 LOGOUT\r\n")
read_until(b"a8 ")

sys.stdout.write("TRANSCRIPT\n")
sys.stdout.write(b"".join(transcript).decode("latin-1"))
sys.stdout.write("END\n")
