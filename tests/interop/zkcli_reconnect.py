#!/usr/bin/env python3
"""The Java client's reconnect path: zkCli through a proxy that drops the connection.

zkCli (the Java client 3.8) sets data, child, exist and persistent-recursive
watches, then the proxy cuts its connection. While it is disconnected a kazoo
client changes the watched nodes directly on the server. zkCli reconnects
with the same session, its last zxid and SetWatches2, and must see the
catch-up events (docs/zookeeper-semantics.md D.6). The normalised transcript is printed, so
`.ci/interop.sh` can diff innkeeper's against ZooKeeper's.

Usage: zkcli_reconnect.py --port SERVER_PORT
"""

import argparse
import re
import socket
import subprocess
import threading
import time

from kazoo.client import KazooClient

ZKCLI = "/usr/share/zookeeper/bin/zkCli.sh"


class Proxy:
    """Forwards 127.0.0.1:<port> to the server; `cut()` drops every connection."""

    def __init__(self, target_port):
        self.target = ("127.0.0.1", target_port)
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.socks = []
        self.refusing = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            client, _ = self.listener.accept()
            if self.refusing:
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.socks += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self, refuse):
        self.refusing = refuse
        with self.lock:
            socks, self.socks = self.socks, []
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    proxy = Proxy(args.port)
    cli = subprocess.Popen(
        [ZKCLI, "-server", "127.0.0.1:%d" % proxy.port],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines = []
    threading.Thread(target=lambda: lines.extend(cli.stdout), daemon=True).start()

    def type_(cmds, pause=0.6):
        for cmd in cmds:
            cli.stdin.write(cmd + "\n")
            cli.stdin.flush()
            time.sleep(pause)

    kz = KazooClient(hosts="127.0.0.1:%d" % args.port)
    kz.start(timeout=15)
    if kz.exists("/rc"):
        kz.delete("/rc", recursive=True)
    kz.create("/rc", b"a")
    kz.create("/rc/k", b"")
    kz.create("/rc/same", b"s")
    time.sleep(2.0)  # zkCli connected
    type_(["get -w /rc", "ls -w /rc", "stat -w /rc/missing", "get -w /rc/same",
           "addWatch /deep"])
    # Cut zkCli off and keep it off while the tree changes.
    proxy.cut(refuse=True)
    time.sleep(0.5)
    kz.set("/rc", b"b")
    kz.create("/rc/missing", b"")
    kz.create("/rc/k2", b"")
    kz.create("/deep", b"")
    proxy.refusing = False
    # The Java client reconnects to a single host after 1–2 s.
    deadline = time.time() + 20
    while time.time() < deadline and sum("SyncConnected type:None" in l for l in lines) < 2:
        time.sleep(0.1)
    time.sleep(1.0)
    # Changes by another client only: zkCli prints its own replies and its
    # events on different threads, in an order neither server decides.
    kz.set("/rc/same", b"t")
    kz.create("/deep/x", b"")
    time.sleep(1.0)
    type_(["quit"])
    cli.wait(timeout=30)
    kz.delete("/rc", recursive=True)
    kz.delete("/deep", recursive=True)
    kz.stop()
    kz.close()
    keep = re.compile(r"WatchedEvent|^\[|^[a-z]+$|^Created|Node does not exist")
    for line in lines:
        line = line.rstrip("\n")
        if keep.search(line) and "SLF4J" not in line:
            print(line)


if __name__ == "__main__":
    main()
