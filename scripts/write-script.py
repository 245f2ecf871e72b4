#!/usr/bin/env python3
"""The coherence write scripts (CoherenceScripts.swift) as Lua, at any git revision, and the two
measurements behind docs/benchmarks.md ("Session 27: what a batched write's script time was"):

  scripts/write-script.py lua REV {write|writeBatch}        print the script's Lua at REV
  scripts/write-script.py diff A.lua B.lua SEED [--single]  differential run on two redis-servers
  scripts/write-script.py bench ROUNDS A.lua B.lua ...      Redis CPU per batched set, alternating

`diff` applies 400 random batches (sets with tags, removes, expires, tag removals, clears; now
and then a lost head or log, a log past the head, a sequence set back, a wrong-type key) with
each script on its own redis-server and compares every reply, then every key's type, content
and TTL; it exits 1 on a difference. With --single the scripts are single `write` scripts and
each mutation is its own call. `bench` runs redis-benchmark of EVALSHA of batch scripts (19 sets
on random keys per call, a subscriber listening) and prints Redis's CPU per set from INFO
commandstats. Both start their own redis-servers on free ports and stop them.
"""
import os, random, re, socket, subprocess, sys, tempfile, textwrap, time

SWIFT = 'Sources/ConcordRedis/Distributed/CoherenceScripts.swift'


def lua(rev, name):
    src = subprocess.run(['git', 'show', f'{rev}:{SWIFT}'], capture_output=True, text=True, check=True).stdout
    body = re.search(r'private static let writeFunction = #"""\n(.*?)"""#', src, re.S).group(1)
    tail = re.search(r'static let ' + name + r' = RedisScript\(writeFunction \+ "\\n" \+ #"""\n(.*?)"""#\)', src, re.S).group(1)
    return textwrap.dedent(body) + '\n' + textwrap.dedent(tail)


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def start_redis():
    port, workdir = free_port(), tempfile.mkdtemp()
    subprocess.run(['redis-server', '--port', str(port), '--save', '', '--appendonly', 'no', '--dir', workdir,
                    '--daemonize', 'yes', '--logfile', os.path.join(workdir, 'log')], check=True)
    for _ in range(100):
        if subprocess.run(['redis-cli', '-p', str(port), 'PING'], capture_output=True).returncode == 0:
            break
        time.sleep(0.05)
    return port


def stop_redis(port):
    subprocess.run(['redis-cli', '-p', str(port), 'SHUTDOWN', 'NOSAVE'], capture_output=True)


class Connection:
    def __init__(self, port):
        self.sock, self.buffer = socket.create_connection(('127.0.0.1', port)), b''

    def call(self, *args):
        out = [b'*%d\r\n' % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b'$%d\r\n%s\r\n' % (len(a), a))
        self.sock.sendall(b''.join(out))
        return self.reply()

    def line(self):
        while b'\r\n' not in self.buffer:
            self.buffer += self.sock.recv(65536)
        line, self.buffer = self.buffer.split(b'\r\n', 1)
        return line

    def bulk(self, n):
        while len(self.buffer) < n + 2:
            self.buffer += self.sock.recv(65536)
        data, self.buffer = self.buffer[:n], self.buffer[n + 2:]
        return data

    def reply(self):
        line = self.line()
        kind, rest = line[:1], line[1:]
        if kind == b'+': return rest
        if kind == b'-': return ('error', rest.split(b' ')[0])  # the code; the text names the script
        if kind == b':': return int(rest)
        if kind == b'$': return None if int(rest) < 0 else self.bulk(int(rest))
        if kind == b'*': return None if int(rest) < 0 else [self.reply() for _ in range(int(rest))]
        raise ValueError(line)


def diff(files, seed, single):
    ports = [start_redis(), start_redis()]
    try:
        conns = [Connection(p) for p in ports]
        shas = [c.call('SCRIPT', 'LOAD', open(f).read()) for c, f in zip(conns, files)]
        rng = random.Random(seed)
        head, log, channel = 'c:{b}:head', 'c:{b}:log', 'c:{b}:bp'
        keys = ['c:{b}:e:k%d' % i for i in range(6)]
        differences = 0
        for round_ in range(400):
            if rng.random() < 0.05:
                damage = rng.choice(['head', 'log', 'log past head', 'sequence back'])
                for c in conns:
                    if damage == 'head': c.call('DEL', head)
                    if damage == 'log': c.call('DEL', log)
                    if damage == 'log past head': c.call('XADD', log, '0-999999', 'm', 'x')
                    if damage == 'sequence back': c.call('HSET', head, 'seq', '1')
            if round_ % 2 == 0:
                for c in conns:
                    strings = [k for k in keys if c.call('TYPE', k) == b'string']
                    if strings: c.call('DEL', *strings)
            if rng.random() < 0.03:
                wrong = rng.choice(keys)
                for c in conns: c.call('SET', wrong, 'a string')
            count = rng.randint(1, 6)
            targets, shared = [], [count, 1000, '%016x' % rng.getrandbits(64), channel, 'PUBLISH']
            mutations = []
            for _ in range(count):
                kind = rng.choice([1, 1, 1, 2, 3, 4, 5, 6])
                version = '%012d' % (round_ * 5 + rng.randint(0, 40))
                believable = rng.choice(['%012d~' % (round_ * 5 + 35), 'zzzz'])
                target = rng.choice(keys) if kind <= 3 else ('c:{b}:tag-expiries' if kind == 4 else head)
                removal_field = 't:%s' % rng.choice('xyz') if kind == 4 else ''
                if kind == 1: tags = rng.sample(['t:x', 't:y', 't:z'], rng.randint(0, 2))
                elif kind >= 4: tags = rng.choice([[], ['1']])
                else: tags = []
                store, publish = rng.choice('1110'), rng.choice('110')
                targets.append(target)
                mutations.append([kind, version, 'envelope%d' % rng.randint(0, 9), rng.choice([100000, 200000]), store,
                                  publish, 'body%d' % rng.randint(0, 99), believable, removal_field, tags])
            if single:
                replies = [[], []]
                for target, (kind, version, env, ttl, store, publish, body, believable, removal, tags) in zip(targets, mutations):
                    args = [kind, version, env, ttl, store, publish, body, 1000, shared[2], channel, believable, 'PUBLISH', removal] + tags
                    for i, (c, sha) in enumerate(zip(conns, shas)):
                        replies[i].append(c.call('EVALSHA', sha, 3, target, head, log, *args))
            else:
                args = list(shared)
                for m in mutations: args += m[:9] + [len(m[9])] + m[9]
                replies = [c.call('EVALSHA', sha, 2 + count, head, log, *targets, *args) for c, sha in zip(conns, shas)]
            if replies[0] != replies[1]:
                differences += 1
                if differences <= 3: print('reply differs in round', round_, replies)
            # Each round's lifetimes, not only the last: a later write sets them again.
            lives = [[(c.call('PTTL', t) + 25000) // 50000 for t in sorted(set(targets))] for c in conns]
            if lives[0] != lives[1]:
                differences += 1
                if differences <= 3: print('lifetimes differ in round', round_, lives)

        def dump(c):
            data = {}
            for k in sorted(c.call('KEYS', '*')):
                t = c.call('TYPE', k)
                if t == b'hash': v = sorted(c.call('HGETALL', k))
                elif t == b'stream': v = c.call('XRANGE', k, '-', '+')
                elif t == b'zset': v = sorted(c.call('ZRANGE', k, '0', '-1'))  # scores are each server's own clock
                else: v = c.call('GET', k)
                ttl = c.call('PTTL', k)
                data[k] = (t, v, (ttl + 25000) // 50000 if ttl > 0 else ttl)
            return data
        dumps = [dump(c) for c in conns]
        for k in sorted(set(dumps[0]) | set(dumps[1])):
            if dumps[0].get(k) != dumps[1].get(k):
                differences += 1
                print('data differs at', k, dumps[0].get(k), dumps[1].get(k))
        print(f'seed {seed}: {differences} differences, log length {len(dumps[0].get(log.encode(), (0, []))[1])}')
        return differences
    finally:
        for p in ports: stop_redis(p)


def bench(rounds, files):
    port = start_redis()
    subscriber = subprocess.Popen(['redis-cli', '-p', str(port), 'SUBSCRIBE', 'c:{b}:bp'], stdout=subprocess.DEVNULL)
    try:
        n, calls = 19, 3000
        keys = ['c:{b}:e:__rand_int__'] * n
        mutation = ['1', '000001a22ed07f00__rand_int__m1', 'CNCE-envelope-bytes-of-the-value-xxxxxxx', '3600000', '1', '1',
                    'body-bytes-of-the-message-' + 'x' * 44, '0', '', '0']
        control = Connection(port)
        for r in range(rounds):
            for f in files:
                sha = control.call('SCRIPT', 'LOAD', open(f).read()).decode()
                control.call('FLUSHALL')
                control.call('CONFIG', 'RESETSTAT')
                command = ['EVALSHA', sha, str(2 + n), 'c:{b}:head', 'c:{b}:log', *keys, str(n), '100000', 'd13432ac891b417a',
                           'c:{b}:bp', 'PUBLISH'] + mutation * n
                subprocess.run(['redis-benchmark', '-p', str(port), '-n', str(calls), '-c', '1', '-r', '100000', '-q', *command],
                               capture_output=True)
                stats = control.call('INFO', 'commandstats').decode()
                usec = float(re.search(r'cmdstat_evalsha:calls=\d+,usec=\d+,usec_per_call=([0-9.]+)', stats).group(1))
                load = open('/proc/loadavg').read().split()[0]
                print(f'round {r + 1} {os.path.basename(f)}: {usec / n:.2f} us of Redis CPU per set ({usec:.0f} per call), load {load}')
    finally:
        subscriber.kill()
        stop_redis(port)


if __name__ == '__main__':
    command = sys.argv[1] if len(sys.argv) > 1 else ''
    if command == 'lua' and len(sys.argv) == 4:
        sys.stdout.write(lua(sys.argv[2], sys.argv[3]))
    elif command == 'diff' and len(sys.argv) >= 5:
        sys.exit(1 if diff(sys.argv[2:4], int(sys.argv[4]), '--single' in sys.argv) else 0)
    elif command == 'bench' and len(sys.argv) >= 4:
        bench(int(sys.argv[2]), sys.argv[3:])
    else:
        sys.exit(__doc__)
