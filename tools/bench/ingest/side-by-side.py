#!/usr/bin/env python3
"""Inbound ingest, side by side in one run: Postfix -> Dovecot (the peers), then Postmesh.

Both are driven the same way by the peers' `bench-ingest.sh` (Postfix's `smtp-source`: N messages
of SIZE bytes over CONC connections, one message per session), which reports the accept rate and
the in-mailbox ("e2e") rate: counted in the Maildir for Dovecot, over IMAP STATUS for Postmesh.

Around each run the CPU time of every process of the system under test is read from
/proc/<pid>/stat (utime + stime + cutime + cstime, so children that came and went during the run,
like Postfix's smtpd and Dovecot's lmtp, count towards their master) and reported per delivered
message.

Postmesh runs as `npm start` runs it (tools/stack), but with its own data directory, its own
ports (so another stack on this machine is not disturbed) and the per-IP connection and message
limits lifted (POSTMESH_SMTP_CONNECTIONS_PER_MINUTE=0, POSTMESH_SMTP_MESSAGES_PER_MINUTE=0), from
this checkout's built services (`npm run build` first). The peers run on their own ports too.

--warmup N sends N messages to each side first, the same way, and measures the next --n from the
mailbox's count after them: a server that has run for a while, rather than one just started (Node
compiles its hot code for tens of seconds of load, on background threads whose CPU a cold run of
5,000 messages counts).

Usage (as root; the peers' setup installs Debian's postfix and dovecot when missing):
  python3 tools/bench/ingest/side-by-side.py [--n 5000] [--size 10240] [--conc 10] [--warmup N]
      [--peers DIR] [--only peer|postmesh] [--json FILE] [--label TEXT] [--profile DIR] [--rspamd]
      [--db-backend sqlite|postgresql]

--db-backend runs Postmesh's storage on FerretDB (POSTMESH_STACK_DB=ferretdb), on SQLite or on
PostgreSQL (POSTMESH_DB_BACKEND; the stack starts its own cluster, whose CPU is reported as
"postgresql"). Without it, the stack's default: SQLite inside storage's process (ADR 0011).

--rspamd filters content on both sides with the same offline rspamd configuration: the peer gets
rspamd's proxy worker as a milter (`smtpd_milters`), Postmesh the stack's rspamd, which
smtp-inbound asks before the 250. Each side's rspamd counts towards its CPU.
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
TICK = os.sysconf("SC_CLK_TCK")


def say(line):
    print(f"[ingest] {line}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_stat(pid):
    """(ppid, cpu seconds incl. reaped children) of a live process, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            raw = f.read()
    except OSError:
        return None
    # The command name (field 2) may contain spaces; everything after its ')' is space-separated.
    fields = raw[raw.rindex(")") + 2 :].split()
    ppid = int(fields[1])
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return ppid, (utime + stime + cutime + cstime) / TICK


def tree_cpu(root_pid):
    """CPU seconds of a process and all its live descendants (each with its reaped children)."""
    children = {}
    cpu = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        st = proc_stat(int(name))
        if st is None:
            continue
        children.setdefault(st[0], []).append(int(name))
        cpu[int(name)] = st[1]
    total, todo = 0.0, [root_pid]
    while todo:
        pid = todo.pop()
        total += cpu.get(pid, 0.0)
        todo.extend(children.get(pid, []))
    return total


def snapshot(pids):
    return {name: tree_cpu(pid) for name, pid in pids.items()}


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def run_bench(peers, host, port, rcpt, n, size, conc, counter, label):
    out = tempfile.NamedTemporaryFile(suffix=".jsonl", delete=False)
    out.close()
    env = {**os.environ, "RESULTS_JSONL": out.name, "LABEL": label, "TIMEOUT": "1200", "STALL": "180"}
    cmd = [os.path.join(peers, "bench-ingest.sh"), host, str(port), rcpt, str(n), str(size), str(conc), counter]
    say(" ".join(cmd))
    subprocess.run(cmd, env=env, check=False)
    with open(out.name) as f:
        lines = [json.loads(line) for line in f if line.strip()]
    os.unlink(out.name)
    if not lines:
        raise SystemExit(f"bench-ingest.sh wrote no result for {label}")
    return lines[-1]


def delivered(result):
    for key in ("delivered", "ok", "n_delivered"):
        v = result.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return int(v)
    return None


def start_milter():
    """rspamd with its proxy worker as a milter (rspamd-milter.mjs): (process, port, pids)."""
    port = free_port()
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rspamd-milter.mjs")
    proc = subprocess.Popen(
        ["node", script, str(port)], cwd=ROOT, stdout=subprocess.PIPE, text=True, start_new_session=True,
    )
    line = proc.stdout.readline()
    if not line:
        raise SystemExit("rspamd (milter) did not start")
    info = json.loads(line)
    say(f"rspamd milter on 127.0.0.1:{port}: {info['pids']}")
    return proc, port, info["pids"], info["controllerUrl"]


def rspamd_scanned(controller_url):
    """Messages rspamd scanned so far (its controller's /stat), to show the filter really ran."""
    import urllib.request

    with urllib.request.urlopen(f"{controller_url}/stat", timeout=10) as r:
        return json.load(r).get("scanned")


def stop_process_group(proc):
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def warm_up(args, port, rcpt, counter, label):
    """--warmup: that many messages first, the same way, neither timed nor counted (the measured run
    counts from the mailbox's count after them). A long-running server is warm: Node's JIT compiles
    the hot code in background threads for tens of seconds of load, which a cold run of 5,000
    messages pays inside its CPU figures."""
    if args.warmup <= 0:
        return
    say(f"{label}: warm-up, {args.warmup} messages (not measured)")
    run_bench(args.peers, "127.0.0.1", port, rcpt, args.warmup, args.size, args.conc, counter, f"{label}-warmup")


def peer_run(args):
    base = tempfile.mkdtemp(prefix="ingest-peer-")
    smtp, imap, lmtp = free_port(), free_port(), free_port()
    env = {**os.environ, "SMTP_PORT": str(smtp), "IMAP_PORT": str(imap), "LMTP_PORT": str(lmtp)}
    setup = os.path.join(args.peers, "setup-postfix-dovecot.sh")
    subprocess.run([setup, base, "reset"], env=env, check=True, stdout=subprocess.DEVNULL)
    milter = None
    scanned = None
    try:
        pids = {}
        for name, path in (("postfix", "postfix/spool/pid/master.pid"), ("dovecot", "dovecot/run/master.pid")):
            with open(os.path.join(base, path)) as f:
                pids[name] = int(re.sub(r"\D", "", f.read()))
        if args.rspamd:
            # Postfix + rspamd as a milter, the way rspamd's own MTA-integration guide sets it up:
            # every message is scanned before Postfix answers the DATA.
            milter, port, milter_pids, milter_controller = start_milter()
            pids.update(milter_pids)
            pconf = os.path.join(base, "postfix/etc")
            subprocess.run(
                ["postconf", "-c", pconf, "-e", f"smtpd_milters=inet:127.0.0.1:{port}",
                 "milter_default_action=tempfail", "milter_protocol=6", "milter_mail_macros=i {mail_addr} {client_addr} {client_name} {auth_authen}"],
                check=True,
            )
            subprocess.run(["postfix", "-c", pconf, "reload"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(2)
        maildir = os.path.join(base, "maildirs/testuser1/Maildir")
        warm_up(args, smtp, "testuser1@example.test", maildir, "postfix-dovecot")
        before = snapshot(pids)
        load = loadavg()
        result = run_bench(
            args.peers, "127.0.0.1", smtp, "testuser1@example.test", args.n, args.size, args.conc,
            maildir, "postfix-dovecot",
        )
        after = snapshot(pids)
        if args.rspamd:
            scanned = rspamd_scanned(milter_controller)
    finally:
        if milter is not None:
            stop_process_group(milter)
        subprocess.run([setup, base, "stop"], env=env, check=False, stdout=subprocess.DEVNULL)
        shutil.rmtree(base, ignore_errors=True)
    return {"result": result, "cpu": {k: after[k] - before[k] for k in pids}, "load": load, "scanned": scanned}


def postmesh_run(args):
    data = tempfile.mkdtemp(prefix="ingest-postmesh-")
    # rspamd and Redis run as their own unprivileged users and must reach their data under it.
    os.chmod(data, 0o711)
    password = "bench-" + os.urandom(6).hex()
    ports = {
        name: str(free_port())
        for name in (
            "NATS", "NATS_MONITOR", "MONGO", "SMTP", "SUBMISSION", "SUBMISSIONS", "IMAP", "IMAPS",
            "MANAGESIEVE", "HTTP", "GRPC", "SMTP_INBOUND_OPS", "STORAGE_OPS", "IMAP_OPS", "MTA_DELIVERY_OPS", "ADMIN_OPS",
            "RSPAMD", "RSPAMD_CONTROLLER", "RSPAMD_REDIS",
        )
    }
    env = {
        **os.environ,
        **{f"POSTMESH_{k}_PORT": v for k, v in ports.items()},
        "POSTMESH_DATA_DIR": data,
        "POSTMESH_DEV_PASSWORD": password,
        "POSTMESH_SMTP_CONNECTIONS_PER_MINUTE": "0",
        # One client address sends everything: its per-minute message limit (6,000) would refuse
        # a long run (the peer's Postfix has no such limit by default).
        "POSTMESH_SMTP_MESSAGES_PER_MINUTE": "0",
        # Measure the build that is there (`npm run build` first): the launcher's own build would
        # run inside the start-up deadline and compete with the peers for the CPU.
        "POSTMESH_SKIP_BUILD": "1",
        # Content filtering on both sides or on neither: --rspamd gives the peer rspamd as a milter
        # and Postmesh the stack's rspamd (smtp-inbound asks it before the 250).
        "POSTMESH_STACK_RSPAMD": "true" if args.rspamd else "false",
    }
    if args.db_backend:
        # FerretDB on SQLite or on the stack's own PostgreSQL cluster (its processes are counted
        # as "postgresql"); unset, the stack's default (POSTMESH_STACK_DB, else SQLite inside
        # storage's process, ADR 0011).
        env["POSTMESH_STACK_DB"] = "ferretdb"
        env["POSTMESH_DB_BACKEND"] = args.db_backend
    if args.profile:
        # Every Node process of the stack (the launcher and the five services) writes a V8 CPU
        # profile (<service>-<pid>.cpuprofile, for Chrome DevTools, speedscope or
        # profile-summary.mjs) into this directory when it exits. Node refuses --cpu-prof in
        # NODE_OPTIONS, so a preloaded hook runs the profiler instead.
        os.makedirs(args.profile, exist_ok=True)
        hook = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cpu-profile-hook.mjs")
        env["NODE_OPTIONS"] = (os.environ.get("NODE_OPTIONS", "") + f" --import {hook}").strip()
        env["POSTMESH_CPU_PROFILE_DIR"] = os.path.abspath(args.profile)
    log = open(os.path.join(data, "stack.out"), "w")
    stack = subprocess.Popen(
        ["node", os.path.join(ROOT, "tools/stack/bin/postmesh-stack.mjs"), "start"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        stack_file = os.path.join(data, "stack.json")
        deadline = time.time() + 300
        while not os.path.exists(stack_file):
            if stack.poll() is not None or time.time() > deadline:
                log.flush()
                with open(os.path.join(data, "stack.out")) as f:
                    sys.stdout.write(f.read())
                raise SystemExit("the Postmesh stack did not start")
            time.sleep(0.5)
        time.sleep(1)
        with open(stack_file) as f:
            pids = {p["name"]: p["pid"] for p in json.load(f)["processes"] if p.get("pid")}
        say(f"Postmesh up: {pids}")
        if args.rspamd:
            # The stack accepts mail unscanned until rspamd answers (its first start compiles
            # Hyperscan databases for minutes): wait for it, or the run would measure no filter.
            deadline = time.time() + 900
            while True:
                try:
                    rspamd_scanned(f"http://127.0.0.1:{ports['RSPAMD_CONTROLLER']}")
                    break
                except OSError:
                    if time.time() > deadline:
                        raise SystemExit("the stack's rspamd did not answer within 15 minutes")
                    time.sleep(2)
            say("Postmesh's rspamd answers")
        inbox = f"imap://demo@example.test:{password}@127.0.0.1:{ports['IMAP']}/INBOX"
        warm_up(args, ports["SMTP"], "demo@example.test", inbox, "postmesh")
        before = snapshot(pids)
        load = loadavg()
        result = run_bench(
            args.peers, "127.0.0.1", ports["SMTP"], "demo@example.test", args.n, args.size, args.conc,
            inbox, "postmesh",
        )
        after = snapshot(pids)
        scanned = rspamd_scanned(f"http://127.0.0.1:{ports['RSPAMD_CONTROLLER']}") if args.rspamd else None
    finally:
        try:
            os.killpg(stack.pid, signal.SIGTERM)
            stack.wait(timeout=60)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(stack.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        log.close()
        if args.keep:
            say(f"kept {data}")
        else:
            shutil.rmtree(data, ignore_errors=True)
    return {"result": result, "cpu": {k: after[k] - before[k] for k in pids}, "load": load, "scanned": scanned}


def report(name, run, n):
    r = run["result"]
    count = delivered(r) or n
    say(
        f"{name}: accept {r.get('accept_rate')} msg/s, in mailbox {r.get('e2e_rate')} msg/s, "
        f"p50 {r.get('e2e_p50_ms')} ms, p99 {r.get('e2e_p99_ms')} ms, load average at start {run['load']}"
    )
    if run.get("scanned") is not None:
        say(f"  rspamd scanned {run['scanned']} messages (its controller's /stat)")
    total = 0.0
    for proc, seconds in sorted(run["cpu"].items(), key=lambda kv: -kv[1]):
        total += seconds
        say(f"  {proc:14} {seconds:8.2f} s CPU  {1000 * seconds / count:7.2f} ms/msg")
    say(f"  {'total':14} {total:8.2f} s CPU  {1000 * total / count:7.2f} ms/msg")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=5000)
    p.add_argument("--size", type=int, default=10240)
    p.add_argument("--conc", type=int, default=10)
    p.add_argument(
        "--warmup",
        type=int,
        default=0,
        metavar="N",
        help="send N messages to each side first, not measured (steady state rather than a cold start)",
    )
    p.add_argument("--peers", default=os.path.abspath(os.path.join(ROOT, "..", "shared", "peers")))
    p.add_argument("--only", choices=("peer", "postmesh"))
    p.add_argument("--json", help="append the whole result as one JSON line to this file")
    p.add_argument("--label", default="")
    p.add_argument("--keep", action="store_true", help="keep Postmesh's data directory (logs)")
    p.add_argument(
        "--rspamd",
        action="store_true",
        help="content filtering on both sides: Postfix with rspamd as a milter, Postmesh with the stack's rspamd",
    )
    p.add_argument(
        "--db-backend",
        choices=("sqlite", "postgresql"),
        help="run Postmesh on FerretDB with this backend (POSTMESH_STACK_DB=ferretdb, POSTMESH_DB_BACKEND); "
        "default: the stack's default (SQLite in storage's process)",
    )
    p.add_argument(
        "--profile",
        metavar="DIR",
        help="run Postmesh's Node processes under V8's CPU profiler, writing their profiles into DIR at exit "
        "(profiling costs CPU: do not report the rates of a profiled run)",
    )
    args = p.parse_args()
    if not os.path.exists(os.path.join(args.peers, "bench-ingest.sh")):
        if os.path.exists("/work/shared/peers/bench-ingest.sh"):
            args.peers = "/work/shared/peers"
        else:
            raise SystemExit(f"no bench-ingest.sh under {args.peers} (--peers DIR)")
    runs = {}
    if args.only != "postmesh":
        runs["postfix-dovecot"] = peer_run(args)
    if args.only != "peer":
        runs["postmesh"] = postmesh_run(args)
    say(
        f"N={args.n} SIZE={args.size} CONC={args.conc} warm-up={args.warmup} "
        f"db-backend={args.db_backend or 'default'} {args.label}"
    )
    for name, run in runs.items():
        report(name, run, args.n)
    if len(runs) == 2:
        ours = runs["postmesh"]["result"].get("e2e_rate") or 0
        theirs = runs["postfix-dovecot"]["result"].get("e2e_rate") or 0
        ratio = ours / theirs if theirs else 0
        say(f"ratio (Postmesh / Postfix->Dovecot, in mailbox): {ratio:.3f}")
    if args.json:
        with open(args.json, "a") as f:
            f.write(json.dumps({"time": time.time(), "label": args.label, "n": args.n, "warmup": args.warmup, "db_backend": args.db_backend, "runs": runs}) + "\n")


if __name__ == "__main__":
    main()
