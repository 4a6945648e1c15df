#!/usr/bin/env python3
"""Kazoo scenarios whose outcomes must be identical on innkeeper and Apache ZooKeeper.

Each scenario drives kazoo 2.11 recipes (or raw calls) against one server and
returns a JSON-serialisable value built only from things that do not depend
on the server's clock, session ids or zxid numbering. `.ci/interop.sh` runs
the suite against `innkeeper serve` and against ZooKeeper 3.8 and diffs the
two JSON documents.

Usage: kazoo_suite.py --hosts 127.0.0.1:2181 [--restart CMD] [--only NAME,...]
"""

import argparse
import json
import subprocess
import sys
import threading
import time
import traceback

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import LockTimeout, NoNodeError, NodeExistsError
from kazoo.recipe.cache import TreeCache, TreeEvent

ROOT = "/interop"
WAIT = 15.0


def connect(hosts, **kwargs):
    client = KazooClient(hosts=hosts, timeout=10.0, **kwargs)
    client.start(timeout=WAIT)
    return client


def until(what, predicate, timeout=WAIT):
    deadline = time.time() + timeout
    while not predicate():
        if time.time() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.02)


def s_basic(hosts):
    c = connect(hosts)
    try:
        base = ROOT + "/basic"
        c.ensure_path(base)
        out = {}
        out["seq"] = c.create(base + "/s-", b"x", sequence=True)
        out["seq2"] = c.create(base + "/s-", b"y", sequence=True)
        c.create(base + "/e", b"eph", ephemeral=True)
        data, stat = c.get(base + "/e")
        out["eph"] = [data.decode(), stat.version, stat.ephemeralOwner == c.client_id[0]]
        stat = c.set(base + "/s-0000000000", b"z")
        out["set_version"] = stat.version
        out["children"] = sorted(c.get_children(base))
        out["missing"] = c.exists(base + "/nope") is None
        try:
            c.create(base + "/e")
            out["dup"] = "created"
        except NodeExistsError:
            out["dup"] = "NodeExistsError"
        t = c.transaction()
        t.create(base + "/t1", b"")
        t.check(base + "/s-0000000000", 99)
        t.delete(base + "/nope")
        out["failed_txn"] = [type(r).__name__ for r in t.commit()]
        t = c.transaction()
        t.create(base + "/t1", b"")
        t.set_data(base + "/t1", b"v")
        t.delete(base + "/t1")
        out["txn"] = [r if isinstance(r, (str, bool)) else type(r).__name__ for r in t.commit()]
        out["empty_txn"] = c.transaction().commit()
        root_stat = c.exists("/")
        out["root_cversion_parity"] = root_stat.cversion % 2
        out["zookeeper_children"] = sorted(c.get_children("/zookeeper"))
        out["config"] = c.get("/zookeeper/config")[0].decode()
        out["acl"] = [str(a) for a in c.get_acls(base)[0]]
        c.delete(base, recursive=True)
        out["deleted"] = c.exists(base) is None
        out["server_version"] = list(c.server_version())
        out["ruok"] = c.command(b"ruok")
        return out
    finally:
        c.stop()
        c.close()


def s_lock(hosts):
    a, b = connect(hosts), connect(hosts)
    try:
        path = ROOT + "/lock"
        la, lb = a.Lock(path, "a"), b.Lock(path, "b")
        out = {"a_acquired": la.acquire(timeout=WAIT)}
        try:
            lb.acquire(timeout=0.5)
            out["b_while_held"] = "acquired"
        except LockTimeout:
            out["b_while_held"] = "LockTimeout"
        out["contenders"] = la.contenders()
        la.release()
        out["b_after_release"] = lb.acquire(timeout=WAIT)
        out["contenders_after"] = lb.contenders()
        lb.release()
        return out
    finally:
        for c in (a, b):
            c.stop()
            c.close()


def s_election(hosts):
    a, b = connect(hosts), connect(hosts)
    try:
        path = ROOT + "/election"
        leaders = []
        release = {"a": threading.Event(), "b": threading.Event()}

        def lead(name):
            leaders.append(name)
            release[name].wait(WAIT)

        ea, eb = a.Election(path, "a"), b.Election(path, "b")
        ta = threading.Thread(target=ea.run, args=(lead, "a"))
        ta.start()
        until("a to lead", lambda: leaders == ["a"])
        tb = threading.Thread(target=eb.run, args=(lead, "b"))
        tb.start()
        until("two contenders", lambda: len(ea.contenders()) == 2)
        out = {"contenders": ea.contenders()}
        release["a"].set()
        until("b to lead", lambda: leaders == ["a", "b"])
        release["b"].set()
        ta.join(WAIT)
        tb.join(WAIT)
        out["leaders"] = leaders
        return out
    finally:
        for c in (a, b):
            c.stop()
            c.close()


def s_barrier(hosts):
    c = connect(hosts)
    try:
        barrier = c.Barrier(ROOT + "/barrier")
        out = {"created": barrier.create()}
        out["wait_while_up"] = barrier.wait(0.3)
        threading.Timer(0.2, barrier.remove).start()
        out["wait_after_remove"] = barrier.wait(WAIT)
        return out
    finally:
        c.stop()
        c.close()


def s_double_barrier(hosts):
    a, b = connect(hosts), connect(hosts)
    try:
        path = ROOT + "/double"
        entered = []
        da, db = a.DoubleBarrier(path, 2, "a"), b.DoubleBarrier(path, 2, "b")

        def go(barrier, name):
            barrier.enter()
            entered.append(name)
            barrier.leave()

        ta = threading.Thread(target=go, args=(da, "a"))
        ta.start()
        time.sleep(0.3)
        alone = list(entered)
        tb = threading.Thread(target=go, args=(db, "b"))
        tb.start()
        ta.join(WAIT)
        tb.join(WAIT)
        return {"entered_alone": alone, "entered": sorted(entered),
                "left": not ta.is_alive() and not tb.is_alive()}
    finally:
        for c in (a, b):
            c.stop()
            c.close()


def s_counter(hosts):
    a, b = connect(hosts), connect(hosts)
    try:
        ca, cb = a.Counter(ROOT + "/counter"), b.Counter(ROOT + "/counter")
        ca += 5
        cb -= 2
        ca += 10
        fa = a.Counter(ROOT + "/fcounter", default=0.5)
        fa += 1.25
        return {"value": ca.value, "seen_by_b": cb.value, "float": fa.value}
    finally:
        for c in (a, b):
            c.stop()
            c.close()


def s_queue(hosts):
    c = connect(hosts)
    try:
        q = c.Queue(ROOT + "/queue")
        for item, prio in [(b"low", 200), (b"high", 10), (b"mid", 100), (b"mid2", 100)]:
            q.put(item, priority=prio)
        out = {"len": len(q), "order": [q.get().decode() for _ in range(4)], "empty": q.get()}
        lq = c.LockingQueue(ROOT + "/lqueue")
        lq.put_all([b"one", b"two"])
        first = lq.get(WAIT)
        out["locking_first"] = first.decode()
        out["consumed"] = lq.consume()
        out["locking_left"] = len(lq)
        return out
    finally:
        c.stop()
        c.close()


def s_party(hosts):
    a, b = connect(hosts), connect(hosts)
    try:
        pa, pb = a.Party(ROOT + "/party", "alpha"), b.Party(ROOT + "/party", "beta")
        pa.join()
        pb.join()
        out = {"members": sorted(pa), "len": len(pa)}
        pb.leave()
        out["after_leave"] = sorted(pa)
        sp = a.ShallowParty(ROOT + "/shallow", "gamma")
        sp.join()
        out["shallow"] = list(sp)
        return out
    finally:
        for c in (a, b):
            c.stop()
            c.close()


def s_children_watch(hosts):
    a, b = connect(hosts), connect(hosts)
    try:
        path = ROOT + "/cw"
        a.ensure_path(path)
        seen = []
        a.ChildrenWatch(path, lambda children: seen.append(sorted(children)))
        until("initial", lambda: len(seen) == 1)
        steps = [("create", "x"), ("create", "y"), ("delete", "x")]
        for n, (op, name) in enumerate(steps):
            if op == "create":
                b.create(path + "/" + name)
            else:
                b.delete(path + "/" + name)
            until("step %d" % n, lambda n=n: len(seen) == n + 2)
        return {"seen": seen}
    finally:
        for c in (a, b):
            c.stop()
            c.close()


def s_data_watch(hosts):
    a, b = connect(hosts), connect(hosts)
    try:
        path = ROOT + "/dw"
        seen = []

        def record(data, stat, event=None):
            seen.append(None if stat is None else [data.decode() if data is not None else None,
                                                   stat.version,
                                                   event.type if event else None])

        a.DataWatch(path, record)
        until("initial", lambda: len(seen) == 1)
        b.create(path, b"v0")
        until("created", lambda: len(seen) == 2)
        b.set(path, b"v1")
        until("changed", lambda: len(seen) == 3)
        b.delete(path)
        until("deleted", lambda: len(seen) == 4)
        return {"seen": seen}
    finally:
        for c in (a, b):
            c.stop()
            c.close()


def s_tree_cache(hosts):
    a, b = connect(hosts), connect(hosts)
    try:
        path = ROOT + "/tree"
        b.ensure_path(path + "/one")
        cache = TreeCache(a, path)
        events = []
        cache.listen(lambda e: events.append(e.event_type))
        cache.start()
        until("initialized", lambda: TreeEvent.INITIALIZED in events)
        b.create(path + "/two", b"2")
        b.create(path + "/one/deep", b"d")
        until("two", lambda: cache.get_data(path + "/two") is not None)
        until("deep", lambda: cache.get_data(path + "/one/deep") is not None)
        b.set(path + "/two", b"22")
        until("update", lambda: cache.get_data(path + "/two").data == b"22")
        b.delete(path + "/one/deep")
        until("removed", lambda: cache.get_data(path + "/one/deep") is None
              and TreeEvent.NODE_REMOVED in events)
        out = {
            "children": sorted(cache.get_children(path)),
            "two": cache.get_data(path + "/two").data.decode(),
            "event_kinds": sorted(set(events)),
        }
        cache.close()
        return out
    finally:
        for c in (a, b):
            c.stop()
            c.close()


def s_session_expiry(hosts):
    a = connect(hosts)
    try:
        states = []
        a.add_listener(lambda s: states.append(s))
        a.create(ROOT + "/expiring", b"", ephemeral=True, makepath=True)
        old_id = a.client_id[0]
        # The classic way to expire a session on purpose: a second handle
        # on the same session closes it.
        twin = KazooClient(hosts=hosts, timeout=10.0, client_id=a.client_id)
        twin.start(timeout=WAIT)
        twin.stop()
        twin.close()
        until("LOST", lambda: KazooState.LOST in states)
        until("reconnected", lambda: a.connected and states[-1] == KazooState.CONNECTED)
        return {
            "states": [s for s in states],
            "new_session": a.client_id[0] != old_id,
            "ephemeral_gone": a.exists(ROOT + "/expiring") is None,
        }
    finally:
        a.stop()
        a.close()


def s_restart(hosts, restart_cmd):
    if not restart_cmd:
        return "skipped: no --restart command"
    a = connect(hosts)
    try:
        states = []
        a.add_listener(lambda s: states.append(s))
        a.ensure_path(ROOT + "/durable")
        a.set(ROOT + "/durable", b"kept")
        a.create(ROOT + "/eph-restart", b"", ephemeral=True)
        sid = a.client_id[0]
        subprocess.run(restart_cmd, shell=True, check=True)
        until("suspended", lambda: KazooState.SUSPENDED in states, timeout=30)
        until("reconnected", lambda: a.connected, timeout=30)
        return {
            "states": list(states),
            "same_session": a.client_id[0] == sid,
            "data": a.get(ROOT + "/durable")[0].decode(),
            "ephemeral_kept": a.exists(ROOT + "/eph-restart") is not None,
        }
    finally:
        a.stop()
        a.close()


SCENARIOS = [
    ("basic", s_basic),
    ("lock", s_lock),
    ("election", s_election),
    ("barrier", s_barrier),
    ("double_barrier", s_double_barrier),
    ("counter", s_counter),
    ("queue", s_queue),
    ("party", s_party),
    ("children_watch", s_children_watch),
    ("data_watch", s_data_watch),
    ("tree_cache", s_tree_cache),
    ("session_expiry", s_session_expiry),
]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", required=True)
    parser.add_argument("--restart", default="", help="shell command that restarts the server")
    parser.add_argument("--only", default="", help="comma-separated scenario names")
    args = parser.parse_args()
    only = set(filter(None, args.only.split(",")))
    results = {}
    clean = connect(args.hosts)
    if clean.exists(ROOT):
        clean.delete(ROOT, recursive=True)
    clean.ensure_path(ROOT)
    clean.stop()
    clean.close()
    for name, scenario in SCENARIOS:
        if only and name not in only:
            continue
        started = time.time()
        try:
            results[name] = scenario(args.hosts)
        except Exception as e:  # record, compare, keep going
            traceback.print_exc(file=sys.stderr)
            results[name] = "ERROR: %s: %s" % (type(e).__name__, e)
        print("%-16s %.2fs" % (name, time.time() - started), file=sys.stderr)
    if not only or "restart" in only:
        try:
            results["restart"] = s_restart(args.hosts, args.restart)
        except Exception as e:
            traceback.print_exc(file=sys.stderr)
            results["restart"] = "ERROR: %s: %s" % (type(e).__name__, e)
    json.dump(results, sys.stdout, indent=1, sort_keys=True)
    print()


if __name__ == "__main__":
    main()
