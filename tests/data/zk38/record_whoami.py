"""Records whoAmI answers of Apache ZooKeeper 3.8 for random sequences of
digest authentications (some duplicated, some with the super digest).
Usage: record_whoami.py PORT SEED CASES > whoami.json"""
import json, os, random, struct, sys

def write_compact(d):
    """One case per line, so a re-recording diffs case by case."""
    cases = d.pop('cases')
    head = json.dumps(d, ensure_ascii=False)[:-1]
    sys.stdout.write(head + ', "cases": [\n' + ',\n'.join(json.dumps(c, ensure_ascii=False, separators=(',', ':')) for c in cases) + '\n]}\n')
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rawzk import Raw, s

def whoami(r):
    err, body = r.call(107, b'')
    assert err == 0, err
    n = struct.unpack('>i', body[:4])[0]; off = 4; out = []
    for _ in range(n):
        parts = []
        for _ in range(2):
            ln = struct.unpack('>i', body[off:off+4])[0]; off += 4
            parts.append(body[off:off+ln].decode()); off += ln
        out.append(parts)
    return out

def auth(r, scheme, cred):
    r.send(100, struct.pack('>i', 0) + s(scheme) + s(cred.encode()), xid=-4)
    f = r.read()
    xid, zxid, err = struct.unpack('>iqi', f[:16])
    assert (xid, err) == (-4, 0), (xid, err)

port, seed, cases = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
super_cred = os.environ.get('SUPER')  # "super:secret" when the server has that super digest
rng = random.Random(seed)
out = []
for c in range(cases):
    r = Raw(port, 10000)
    n = rng.choice([0, 1, 2, 3, 5, 8, 11, 12, 13, 20, 23, 24, 25, 30])
    creds = []
    for _ in range(n):
        if super_cred and rng.random() < 0.1:
            cred = super_cred
        elif creds and rng.random() < 0.15:
            cred = rng.choice(creds)
        else:
            user = ''.join(rng.choice('abcdefghijklmnopqrstuvwxyzABC0123456789_-.') for _ in range(rng.randint(1, 12)))
            cred = user + ':' + 'pw%d' % rng.randint(0, 999)
        creds.append(cred)
        auth(r, 'digest', cred)
    out.append({'auths': creds, 'whoami': whoami(r)})
    r.sock.close()
write_compact({'server': 'Apache ZooKeeper 3.8.0 (Debian 3.8.0-11+deb12u2)', 'super': super_cred, 'seed': seed, 'cases': out})
