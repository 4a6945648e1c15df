"""kazoo against a secured server, for .ci/security.sh.

Usage: kazoo_secure.py HOST:PORT MODE CERTS_DIR
  tls         use_ssl=True with the CA (and, as tls-cert, a client certificate)
  tls-cert    the same with the client certificate
  sasl        sasl_options DIGEST-MD5 as bob: identity, a sasl:bob ACL enforced
  sasl-wrong  a wrong password: the connection fails
Prints one line per outcome; exits 1 on anything unexpected.
"""
import os
import sys
import time

from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError
from kazoo.security import ACL, Id, Permissions


def main():
    hosts, mode, certs = sys.argv[1], sys.argv[2], sys.argv[3]
    path = "/security-kazoo-%s-%d" % (mode, time.time_ns())
    if mode in ("tls", "tls-cert"):
        extra = {}
        if mode == "tls-cert":
            extra = {
                "certfile": os.path.join(certs, "client.pem"),
                "keyfile": os.path.join(certs, "client.key"),
            }
        zk = KazooClient(hosts=hosts, use_ssl=True, verify_certs=True,
                         ca=os.path.join(certs, "ca.pem"), timeout=10, **extra)
        zk.start(timeout=15)
        zk.create(path, b"over tls")
        print("read", zk.get(path)[0].decode())
        if mode == "tls-cert":
            acl = [ACL(Permissions.ALL, Id("x509", "CN=client1,OU=test,O=innkeeper"))]
            zk.set_acls(path, acl)
            print("x509 owner reads", zk.get(path)[0].decode())
        zk.delete(path)
        zk.stop()
    elif mode == "sasl":
        zk = KazooClient(hosts=hosts, timeout=10, sasl_options={
            "mechanism": "DIGEST-MD5", "username": "bob", "password": "bob-secret"})
        zk.start(timeout=15)
        acl = [ACL(Permissions.ALL, Id("sasl", "bob"))]
        zk.create(path, b"for bob", acl=acl)
        print("owner reads", zk.get(path)[0].decode())
        other = KazooClient(hosts=hosts, timeout=10)
        other.start(timeout=15)
        try:
            other.get(path)
            print("anonymous reads it")
        except NoAuthError:
            print("anonymous NoAuth")
        other.stop()
        zk.delete(path)
        zk.stop()
    elif mode == "sasl-wrong":
        zk = KazooClient(hosts=hosts, timeout=5, connection_retry={"max_tries": 1},
                         sasl_options={"mechanism": "DIGEST-MD5", "username": "bob",
                                       "password": "not-bobs"})
        # kazoo reports the refusal in its state, not always from start().
        try:
            zk.start(timeout=5)
            zk.exists("/")
            print("served")
        except Exception:  # AuthFailedError, SessionExpiredError or a timeout
            print("refused")
        finally:
            zk.stop()
    else:
        print("unknown mode", mode)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
