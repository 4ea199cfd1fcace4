"""Drives the Postmesh IMAP server with Python's imaplib (an independent client).

Usage: imaplib_check.py HOST PORT USER PASSWORD
Prints one line per check and exits non-zero on the first failure.
"""
import imaplib
import socket
import sys
import time

host, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]


def check(name, condition, detail=""):
    if not condition:
        print(f"FAIL {name}: {detail}")
        sys.exit(1)
    print(f"ok {name}")


def message(subject):
    return (
        f"From: py@example.org\r\nTo: {user}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject.replace(' ', '-')}@example.org>\r\n\r\nbody of {subject}\r\n"
    ).encode()


m = imaplib.IMAP4(host, port)
typ, _ = m.login(user, password)
check("login", typ == "OK")

typ, boxes = m.list()
names = [b.decode().rsplit(" ", 1)[-1] for b in boxes]
check("list", typ == "OK" and "INBOX" in names and "Sent" in names, names)

for i in range(3):
    typ, data = m.append("INBOX", r"(\Flagged)" if i == 0 else None, imaplib.Time2Internaldate(time.time()), message(f"python {i}"))
    check(f"append {i}", typ == "OK" and b"APPENDUID" in data[0], data)

typ, data = m.select("INBOX")
check("select", typ == "OK" and data[0] == b"3", data)

typ, data = m.search(None, "FLAGGED")
check("search flagged", typ == "OK" and data[0] == b"1", data)
typ, data = m.search(None, "SUBJECT", '"python 2"')
check("search subject", typ == "OK" and data[0] == b"3", data)

typ, data = m.fetch("1:3", "(UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
subjects = [part[1].decode().strip() for part in data if isinstance(part, tuple)]
check("fetch headers", typ == "OK" and subjects == ["Subject: python 0", "Subject: python 1", "Subject: python 2"], subjects)

typ, data = m.fetch("2", "(RFC822)")
check("fetch body", typ == "OK" and data[0][1] == message("python 1"), data)
typ, data = m.fetch("2", "(FLAGS)")
check("fetch set \\Seen", typ == "OK" and b"\\Seen" in data[0], data)

typ, data = m.store("3", "+FLAGS", r"(\Answered $Label1)")
check("store", typ == "OK" and b"\\Answered" in data[0] and b"$Label1" in data[0], data)

typ, data = m.copy("1:2", "Archive")
check("copy", typ == "OK", data)
typ, data = m.status("Archive", "(MESSAGES)")
check("status after copy", typ == "OK" and b"MESSAGES 2" in data[0], data)

typ, _ = m.store("1", "+FLAGS", r"(\Deleted)")
typ, data = m.expunge()
check("expunge", typ == "OK" and data == [b"1"], data)
typ, data = m.search(None, "ALL")
check("two left", data[0] == b"1 2", data)

# IDLE (imaplib in Python 3.11 has no idle(): speak it on the socket, RFC 2177).
tag = m._new_tag()
m.send(tag + b" IDLE\r\n")
line = m.readline()
check("idle continuation", line.startswith(b"+"), line)
other = imaplib.IMAP4(host, port)
other.login(user, password)
other.append("INBOX", None, None, message("python idle"))
other.logout()
m.sock.settimeout(10)
line = m.readline()
check("idle exists", line == b"* 3 EXISTS\r\n", line)
m.send(b"DONE\r\n")
# Untagged data may come before the tagged OK (an IMAP4rev1 session gets "* 1 RECENT").
line = m.readline()
while line.startswith(b"* "):
    line = m.readline()
check("idle done", line.startswith(tag + b" OK"), line)
m.sock.settimeout(None)

typ, data = m.uid("SEARCH", None, "ALL")
check("uid search", typ == "OK" and data[0] == b"2 3 4", data)

m.close()
typ, _ = m.logout()
check("logout", typ == "BYE")
print("imaplib: all checks passed")
