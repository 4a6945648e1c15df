"""Records how Apache ZooKeeper 3.8 answers a few odd requests.
Usage: wire_small.py PORT"""
import os, struct, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rawzk import Raw, s

def probe(name, op, body):
    r = Raw(int(sys.argv[1]), 10000)
    ans = r.call(op, body)
    if ans in (None, 'timeout'):
        print(name, '->', ans); return
    err, rest = ans
    # Is the connection still usable?
    ping = r.call(3, s('/') + b'\0')
    print(name, '-> err', err, 'body', rest[:40].hex(), '| then exists("/"):', 'closed' if ping in (None, 'timeout') else ping[0])

probe('getData("")', 4, s('') + b'\0')
probe('exists("")', 3, s('') + b'\0')
probe('getChildren("")', 8, s('') + b'\0')
probe('getData(null)', 4, struct.pack('>i', -1) + b'\0')
probe('exists(null)', 3, struct.pack('>i', -1) + b'\0')
probe('create(null)', 1, struct.pack('>i', -1) + s(b'') + struct.pack('>i', 0) + struct.pack('>i', 0))
probe('getData(bad utf8)', 4, s(b'/\xff\xfe') + b'\0')
probe('create(bad utf8)', 1, s(b'/h5\xff') + s(b'') + struct.pack('>i',1)+struct.pack('>i',31)+s('world')+s('anyone') + struct.pack('>i', 0))
probe('reconfig op16 empty', 16, struct.pack('>i', -1)*3 + struct.pack('>q', -1))
probe('op20 deleteContainer?', 20, s('/nonexistent-h5'))
probe('op20 on /zookeeper', 20, s('/zookeeper'))
probe('op20 on empty string', 20, s(''))
N = struct.pack('>i', -1)
probe('getACL("")', 6, s(''))
probe('getACL(null)', 6, N)
probe('delete(null)', 2, N + struct.pack('>i', -1))
probe('setData(null)', 5, N + s(b'x') + struct.pack('>i', -1))
probe('getChildren(null)', 8, N + b'\0')
probe('getChildren2(null)', 12, N + b'\0')
probe('sync(null)', 9, N)
probe('getAllChildrenNumber(null)', 104, N)
probe('addWatch(null)', 106, N + struct.pack('>i', 0))
probe('getEphemerals(null)', 103, N)
