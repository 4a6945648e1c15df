"""Records getChildren answers of Apache ZooKeeper 3.8 over random
create/delete mixes under fresh parents.
Usage: record_children.py PORT SEED CASES > children.json"""
import json, random, sys

def write_compact(d):
    """One case per line, so a re-recording diffs case by case."""
    cases = d.pop('cases')
    head = json.dumps(d, ensure_ascii=False)[:-1]
    sys.stdout.write(head + ', "cases": [\n' + ',\n'.join(json.dumps(c, ensure_ascii=False, separators=(',', ':')) for c in cases) + '\n]}\n')
from kazoo.client import KazooClient

port, seed, cases = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
zk = KazooClient(hosts='127.0.0.1:%d' % port); zk.start()
alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.é日'
out = []
for c in range(cases):
    parent = '/h5kids-%d-%d-%d' % (seed, c, random.randrange(1 << 30))
    zk.create(parent, b'')
    live, steps = [], []
    target = rng.choice([5, 8, 14, 30, 60])
    for step in range(rng.randint(10, 120)):
        grow = len(live) < target and (not live or rng.random() < 0.65)
        if grow:
            if live and rng.random() < 0.1:
                name = None
            else:
                name = ''.join(rng.choice(alphabet) for _ in range(rng.randint(1, 8)))
            if name is None or name in live or name in ('.', '..'):
                continue
            zk.create(parent + '/' + name, b'')
            live.append(name)
            steps.append(['create', name])
        else:
            name = rng.choice(live)
            zk.delete(parent + '/' + name)
            live.remove(name)
            steps.append(['delete', name])
        if rng.random() < 0.3:
            steps.append(['list', zk.get_children(parent)])
    steps.append(['list', zk.get_children(parent)])
    out.append({'steps': steps})
zk.stop()
write_compact({'server': 'Apache ZooKeeper 3.8.0 (Debian 3.8.0-11+deb12u2)', 'seed': seed, 'cases': out})
