#!/usr/bin/env python3
"""Drives asterd with the real redis-py client (Debian's python3-redis 4.3).

Usage: pyclient.py HOST:PORT standalone|cluster

Every check runs; each failure is printed with the section it belongs to, and the script exits 1
if any failed (0 when all passed). Run by test/e2e/pyclient_test.go.
"""

import hashlib
import sys
import threading
import time
import traceback

import redis
from redis.cluster import RedisCluster

failures = []


class Mismatch(Exception):
    pass


def expect(got, want, what):
    if got != want:
        raise Mismatch(f"{what}: got {got!r}, want {want!r}")


def expect_error(fn, cls, fragment, what):
    """fn must raise cls (or a subclass) whose message contains fragment."""
    try:
        got = fn()
    except cls as e:
        if fragment not in str(e):
            raise Mismatch(f"{what}: {type(e).__name__} {e!r}, want it to say {fragment!r}")
        return e
    raise Mismatch(f"{what}: returned {got!r}, want {cls.__name__} saying {fragment!r}")


def section(fn):
    """Runs one section; a failure is recorded and the next section runs."""
    start = time.monotonic()
    try:
        fn()
        print(f"ok   {fn.__name__} ({time.monotonic() - start:.2f}s)", flush=True)
    except Exception:
        failures.append(fn.__name__)
        print(f"FAIL {fn.__name__}:\n{traceback.format_exc()}", flush=True)
    return fn


host, port = sys.argv[1].rsplit(":", 1)
port = int(port)
mode = sys.argv[2]
if mode not in ("standalone", "cluster"):
    sys.exit(f"usage: {sys.argv[0]} HOST:PORT standalone|cluster")

# What asterd answers a command queued in MULTI whose key is on another node than the
# transaction's (README, What clients see: Transactions).
if mode == "cluster":
    SPLIT_TX = "CROSSSLOT Keys in request don't hash to the same slot"
else:
    SPLIT_TX = "keys of a transaction must all be on one node (use hash tags)"

# Keys spread over every node (standalone: the ring; cluster: slots). Varied bytes, not a
# trailing counter: twemproxy's fnv1a_64, which asterd's ring reproduces, puts "k0".."k39" on
# few nodes.
SPREAD = ["py:" + hashlib.sha1(str(i).encode()).hexdigest()[:12] for i in range(40)]

r = redis.Redis(host=host, port=port, decode_responses=True, socket_timeout=10)
other = redis.Redis(host=host, port=port, decode_responses=True, socket_timeout=10)


@section
def ping_echo():
    expect(r.ping(), True, "ping()")
    expect(r.echo("hello py"), "hello py", "echo()")


@section
def strings():
    expect(r.set("py:s1", "v1"), True, "set")
    expect(r.get("py:s1"), "v1", "get")
    expect(r.get("py:missing"), None, "get of a missing key")
    expect(r.set("py:s1", "nx", nx=True), None, "set nx on an existing key")
    expect(r.mset({k: f"val-{k}" for k in SPREAD}), True, "mset of keys on every node")
    expect(r.mget(SPREAD + ["py:missing"]), [f"val-{k}" for k in SPREAD] + [None], "mget across nodes")
    expect(r.exists(*SPREAD[:10], "py:missing"), 10, "exists across nodes")
    expect(r.delete(*SPREAD[:5], "py:missing"), 5, "delete across nodes")
    expect(r.exists(*SPREAD[:10]), 5, "exists after delete")
    r.delete("py:ctr")
    expect(r.incr("py:ctr"), 1, "incr")
    expect(r.incrby("py:ctr", 41), 42, "incrby")
    expect(r.ttl("py:ctr"), -1, "ttl without expiry")
    expect(r.expire("py:ctr", 100), True, "expire")
    ttl = r.ttl("py:ctr")
    if not 0 < ttl <= 100:
        raise Mismatch(f"ttl after expire 100: got {ttl!r}")
    expect(r.ttl("py:missing"), -2, "ttl of a missing key")
    r.set("py:short", "x", px=150)
    time.sleep(0.3)
    expect(r.get("py:short"), None, "get after a 150 ms px expiry")


@section
def hashes():
    r.delete("py:h")
    fields = {"name": "aster", "lang": "go", "n": "3"}
    expect(r.hset("py:h", mapping=fields), 3, "hset mapping")
    expect(r.hgetall("py:h"), fields, "hgetall as a dict")
    expect(r.hget("py:h", "lang"), "go", "hget")
    expect(r.hincrby("py:h", "n", 2), 5, "hincrby")
    expect(r.hmget("py:h", ["name", "nope"]), ["aster", None], "hmget")
    expect(sorted(r.hkeys("py:h")), ["lang", "n", "name"], "hkeys")
    expect(r.hgetall("py:missing"), {}, "hgetall of a missing key")


@section
def lists():
    r.delete("py:l")
    expect(r.lpush("py:l", "c", "b", "a"), 3, "lpush")
    expect(r.rpush("py:l", "d"), 4, "rpush")
    expect(r.lrange("py:l", 0, -1), ["a", "b", "c", "d"], "lrange")
    expect(r.lpop("py:l"), "a", "lpop")
    expect(r.llen("py:l"), 3, "llen")


@section
def sets():
    r.delete("{py:set}a", "{py:set}b")
    expect(r.sadd("{py:set}a", "x", "y", "z"), 3, "sadd")
    expect(r.sadd("{py:set}b", "y", "z", "w"), 3, "sadd")
    expect(r.smembers("{py:set}a"), {"x", "y", "z"}, "smembers as a set")
    expect(r.sismember("{py:set}a", "y"), True, "sismember")
    expect(r.scard("{py:set}a"), 3, "scard")
    expect(r.sinter("{py:set}a", "{py:set}b"), {"y", "z"}, "sinter of tagged keys")
    expect_error(lambda: r.sinter("py:set:a", *SPREAD), redis.ResponseError,
                 "CROSSSLOT", "sinter of keys on different nodes")


@section
def sorted_sets():
    r.delete("py:z")
    expect(r.zadd("py:z", {"one": 1, "two": 2, "half": 0.5}), 3, "zadd")
    expect(r.zrange("py:z", 0, -1, withscores=True),
           [("half", 0.5), ("one", 1.0), ("two", 2.0)], "zrange withscores")
    expect(r.zrange("py:z", 0, 0, desc=True), ["two"], "zrange desc")
    expect(r.zscore("py:z", "two"), 2.0, "zscore")
    expect(r.zincrby("py:z", 1.5, "one"), 2.5, "zincrby")
    expect(r.zrangebyscore("py:z", 1, 3, withscores=True), [("two", 2.0), ("one", 2.5)],
           "zrangebyscore withscores")


@section
def pipeline_plain():
    keys = [f"py:pipe:{i}" for i in range(25)]
    r.delete(*keys, *[k + ":l" for k in keys])
    p = r.pipeline(transaction=False)
    want = []
    for i, k in enumerate(keys):
        p.set(k, i)
        want.append(True)
        p.incr(k)
        want.append(i + 1)
        p.get(k)
        want.append(str(i + 1))
        p.rpush(k + ":l", i)
        want.append(1)
    p.mget(keys)
    want.append([str(i + 1) for i in range(len(keys))])
    got = p.execute()
    expect(len(got), len(want), "pipeline reply count")
    for i, (g, w) in enumerate(zip(got, want)):
        expect(g, w, f"pipeline reply {i}")
    # A failing command in a plain pipeline is returned in place, the rest still answer.
    p = r.pipeline(transaction=False)
    p.set("py:pipe:str", "s").lpush("py:pipe:str", "x").get("py:pipe:str")
    got = p.execute(raise_on_error=False)
    expect(got[0], True, "pipeline set")
    if not isinstance(got[1], redis.ResponseError) or "WRONGTYPE" not in str(got[1]):
        raise Mismatch(f"pipeline lpush on a string: got {got[1]!r}, want WRONGTYPE")
    expect(got[2], "s", "pipeline get after a failed command")
    # A big one: 4,000 commands with 1 KiB values, sent by redis-py in one go before it reads.
    p = r.pipeline(transaction=False)
    for i in range(2000):
        p.set(f"py:big:{i}", f"{i:04d}" * 256)
        p.get(f"py:big:{i}")
    got = p.execute()
    expect(len(got), 4000, "big pipeline reply count")
    for i in range(2000):
        expect(got[2 * i + 1], f"{i:04d}" * 256, f"big pipeline get {i}")
    expect(len(r.get("py:big:7")), 1024, "value written by the big pipeline")


@section
def transaction():
    a, b = "{py:order7}.total", "{py:order7}.items"
    r.delete(a, b)
    p = r.pipeline(transaction=True)
    p.set(a, 10).incrby(a, 5).rpush(b, "x", "y").lrange(b, 0, -1).get(a)
    expect(p.execute(), [True, 15, 2, ["x", "y"], "15"], "MULTI/EXEC of tagged keys")
    # A transaction without keys runs on any node.
    p = r.pipeline(transaction=True)
    p.ping().echo("in tx")
    expect(p.execute(), [True, "in tx"], "MULTI/EXEC without keys")
    # Keys on different nodes: the command is refused when queued and EXEC answers EXECABORT;
    # redis-py raises the first queued command's error.
    p = r.pipeline(transaction=True)
    p.set("py:tx:first", "1")
    for k in SPREAD:
        p.set(k, "tx")
    e = expect_error(p.execute, redis.ResponseError, SPLIT_TX, "MULTI/EXEC across nodes")
    if isinstance(e, redis.exceptions.ExecAbortError):
        raise Mismatch(f"MULTI/EXEC across nodes raised the EXECABORT itself: {e!r}")
    expect(r.get("py:tx:first"), None, "a key of the refused transaction")
    # The connection is still usable afterwards.
    expect(r.get(a), "15", "get after a refused transaction")


@section
def watch():
    key = "{py:w}.balance"
    r.set(key, 100)
    # Nothing changed the watched key: EXEC runs.
    with r.pipeline() as p:
        p.watch(key)
        bal = int(p.get(key))
        p.multi()
        p.set(key, bal - 30)
        p.get(key)
        expect(p.execute(), [True, "70"], "WATCH then MULTI/EXEC, key unchanged")
    # Another client changes it between WATCH and EXEC: WatchError.
    with r.pipeline() as p:
        p.watch(key)
        bal = int(p.get(key))
        other.set(key, 1)
        p.multi()
        p.set(key, bal - 30)
        expect_error(p.execute, redis.WatchError, "", "EXEC after the watched key changed")
    expect(r.get(key), "1", "watched key after the aborted EXEC")
    # redis-py's transaction() helper retries until the watched key stays put.
    def add_one(p):
        v = int(p.get(key))
        p.multi()
        p.set(key, v + 1)
    r.transaction(add_one, key)
    expect(r.get(key), "2", "r.transaction() helper")


@section
def pubsub():
    ps = r.pubsub()
    ps.subscribe("py:chan")
    msg = ps.get_message(timeout=5)
    expect(msg, {"type": "subscribe", "pattern": None, "channel": "py:chan", "data": 1},
           "subscribe confirmation")
    ps.psubscribe("py:pat:*")
    msg = ps.get_message(timeout=5)
    expect(msg, {"type": "psubscribe", "pattern": None, "channel": "py:pat:*", "data": 2},
           "psubscribe confirmation")
    expect(other.publish("py:chan", "hello"), 1, "publish to one subscriber")
    msg = ps.get_message(timeout=5)
    expect(msg, {"type": "message", "pattern": None, "channel": "py:chan", "data": "hello"},
           "message")
    other.publish("py:pat:x", "by pattern")
    msg = ps.get_message(timeout=5)
    expect(msg, {"type": "pmessage", "pattern": "py:pat:*", "channel": "py:pat:x",
                 "data": "by pattern"}, "pmessage")
    # PING in subscribed mode, then leave.
    ps.ping()
    msg = ps.get_message(timeout=5)
    expect(msg, {"type": "pong", "pattern": None, "channel": None, "data": ""}, "ping in subscribed mode")
    ps.unsubscribe("py:chan")
    msg = ps.get_message(timeout=5)
    expect(msg, {"type": "unsubscribe", "pattern": None, "channel": "py:chan", "data": 1},
           "unsubscribe confirmation")
    ps.punsubscribe()
    msg = ps.get_message(timeout=5)
    expect(msg, {"type": "punsubscribe", "pattern": None, "channel": "py:pat:*", "data": 0},
           "punsubscribe confirmation")
    ps.close()
    # A handler run by redis-py's own listener thread.
    got = []
    ps = r.pubsub(ignore_subscribe_messages=True)
    ps.subscribe(**{"py:chan2": lambda m: got.append(m["data"])})
    th = ps.run_in_thread(sleep_time=0.01, daemon=True)
    try:
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            other.publish("py:chan2", "to handler")
            time.sleep(0.05)
    finally:
        th.stop()
        th.join(5)
        ps.close()
    if not got or got[0] != "to handler":
        raise Mismatch(f"run_in_thread handler got {got!r}")
    # With health checks on, redis-py sends PING while subscribed and drops the pong itself,
    # answering None for it: a message published before the PING must come before the pong,
    # as from one Redis server, or get_message returns None first.
    hc = redis.Redis(host=host, port=port, decode_responses=True, socket_timeout=10,
                     health_check_interval=0.2)
    ps = hc.pubsub(ignore_subscribe_messages=True)
    ps.subscribe("py:hc")
    ps.get_message(timeout=1)
    for i in range(5):
        time.sleep(0.25)
        other.publish("py:hc", f"after a health check {i}")
        expect(ps.get_message(timeout=5), {"type": "message", "pattern": None, "channel": "py:hc",
                                           "data": f"after a health check {i}"},
               f"message {i} published before a health check")
        expect(ps.get_message(timeout=5), None, f"health check pong {i}")
    ps.close()
    hc.close()


@section
def blocking():
    key = "{py:q}.jobs"
    r.delete(key)
    result = {}

    def waiter():
        c = redis.Redis(host=host, port=port, decode_responses=True, socket_timeout=10)
        start = time.monotonic()
        result["v"] = c.blpop([key], timeout=5)
        result["took"] = time.monotonic() - start
        c.close()

    th = threading.Thread(target=waiter)
    th.start()
    time.sleep(0.3)
    expect(other.rpush(key, "job1"), 1, "rpush that releases the BLPOP")
    th.join(10)
    expect(result.get("v"), (key, "job1"), "blpop released by rpush")
    if result["took"] > 4:
        raise Mismatch(f"blpop took {result['took']:.2f}s to be released")
    start = time.monotonic()
    expect(r.blpop([key], timeout=1), None, "blpop timeout")
    took = time.monotonic() - start
    if not 0.8 < took < 4:
        raise Mismatch(f"blpop with timeout 1 returned after {took:.2f}s")
    # The connection serves ordinary commands after a blocking one.
    r.rpush(key, "a", "b")
    expect(r.brpop([key], timeout=1), (key, "b"), "brpop of a ready list")
    expect(r.lrange(key, 0, -1), ["a"], "lrange after brpop")


@section
def scan():
    # SCAN walks every node (masters in cluster mode); the per-key scans are forwarded.
    want = {f"py:scan:{i}:{i * 7919 % 1000}" for i in range(200)}
    for k in want:
        r.set(k, "1")
    got = list(r.scan_iter(match="py:scan:*", count=50))
    expect(len(got), len(want), "scan_iter key count (each key once)")
    expect(set(got), want, "scan_iter keys")
    expect(r.dbsize() >= len(want), True, "dbsize counts every node's keys")
    r.delete("py:hs")
    r.hset("py:hs", mapping={f"f{i}": i for i in range(50)})
    got = dict(r.hscan_iter("py:hs", count=10))
    expect(len(got), 50, "hscan_iter field count")
    expect(got["f7"], "7", "hscan_iter value")
    r.delete("py:ss")
    r.sadd("py:ss", *range(30))
    expect(len(set(r.sscan_iter("py:ss", count=5))), 30, "sscan_iter")


@section
def scripting():
    a, b = "{py:lua}a", "{py:lua}b"
    r.set(a, "5")
    expect(r.eval("return redis.call('GET', KEYS[1])", 1, a), "5", "eval reading a tagged key")
    expect(r.eval("redis.call('SET', KEYS[2], ARGV[1]); return redis.call('INCRBY', KEYS[1], ARGV[1])",
                  2, a, b, 10), 15, "eval with two tagged keys")
    expect(r.get(b), "10", "key written by the script")
    incr = r.register_script("return redis.call('INCR', KEYS[1])")
    expect(incr(keys=[a]), 16, "registered script (EVALSHA, SCRIPT LOAD on NOSCRIPT, EVALSHA)")
    expect(incr(keys=[a]), 17, "registered script again (EVALSHA)")
    expect_error(lambda: r.eval("return 1", len(SPREAD), *SPREAD), redis.ResponseError,
                 "CROSSSLOT", "eval with keys on different nodes")
    # SCRIPT LOAD reaches every node, so EVALSHA works whatever node its keys are on.
    sha = r.script_load("return redis.call('GET', KEYS[1])")
    expect(r.script_exists(sha, "0" * 40), [True, False], "script_exists")
    expect([r.evalsha(sha, 1, k) for k in SPREAD[5:15]], [f"val-{k}" for k in SPREAD[5:15]],
           "evalsha on keys of every node")
    expect(r.script_flush(), True, "script_flush")
    expect(r.script_exists(sha), [False], "script_exists after script_flush")
    expect_error(lambda: r.evalsha(sha, 1, a), redis.exceptions.NoScriptError, "No matching script",
                 "evalsha after script_flush")
    # register_script loads the script again on NOSCRIPT.
    expect(incr(keys=[a]), 18, "registered script after script_flush")
    expect_error(lambda: r.script_kill(), redis.ResponseError, "No scripts in execution right now",
                 "script_kill with nothing running")


@section
def lock():
    # redis-py's Lock releases and extends with registered Lua scripts (EVALSHA, SCRIPT LOAD).
    r.script_flush()
    lk = r.lock("py:lock", timeout=5, blocking_timeout=1)
    expect(lk.acquire(), True, "lock acquire")
    expect(r.lock("py:lock", blocking_timeout=0.2).acquire(), False, "second lock acquire")
    expect(lk.extend(5), True, "lock extend")
    lk.release()
    expect(r.exists("py:lock"), 0, "lock key after release")
    with r.lock("py:lock", timeout=5):
        expect(r.exists("py:lock"), 1, "lock key inside with")


@section
def pool_threads():
    pool = redis.ConnectionPool(host=host, port=port, decode_responses=True, socket_timeout=10)
    c = redis.Redis(connection_pool=pool)
    errors = []

    def worker(n):
        try:
            for i in range(50):
                k = f"py:thr:{n}:{i}"
                c.set(k, f"{n}-{i}")
                got = c.get(k)
                if got != f"{n}-{i}":
                    errors.append(f"thread {n}: get {k} = {got!r}")
                    return
        except Exception as e:  # noqa: BLE001 — reported below
            errors.append(f"thread {n}: {e!r}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    if errors:
        raise Mismatch("; ".join(errors))
    made = len(pool._available_connections) + len(pool._in_use_connections)
    if not 1 <= made <= 6:
        raise Mismatch(f"connection pool made {made} connections for 6 threads")
    # Connections are reused: more work does not open more of them.
    for i in range(20):
        c.get(f"py:thr:0:{i}")
    made2 = len(pool._available_connections) + len(pool._in_use_connections)
    expect(made2, made, "connections after reuse")
    pool.disconnect()


@section
def client_name_and_info():
    # redis-py sends CLIENT SETNAME on every new connection when client_name is set.
    c = redis.Redis(host=host, port=port, decode_responses=True, client_name="py-worker",
                    socket_timeout=10)
    expect(c.client_getname(), "py-worker", "client_getname after client_name=")
    expect(c.client_setname("renamed"), True, "client_setname")
    expect(c.client_getname(), "renamed", "client_getname after client_setname")
    expect(c.get("py:s1"), "v1", "get on a named connection")
    expect(c.client_id() > 0, True, "client_id")
    # The name belongs to the connection: another one has none, RESET clears it.
    expect(r.client_getname(), None, "client_getname of an unnamed connection")
    c.execute_command("RESET")
    expect(c.client_getname(), None, "client_getname after RESET")
    expect_error(lambda: c.client_setname("has space"), redis.ResponseError,
                 "Client names cannot contain spaces", "client_setname with a space")
    # CLIENT LIST and INFO are the proxy's own clients, parsed by redis-py as Redis's.
    c.client_setname("listed")
    me = c.client_info()
    expect(me.get("name"), "listed", "client_info name")
    expect(str(me.get("id")), str(c.client_id()), "client_info id")
    mine = [e for e in c.client_list() if str(e.get("id")) == str(me.get("id"))]
    expect(len(mine), 1, "client_list lists this connection once")
    expect(mine[0].get("name"), "listed", "client_list name")
    expect(mine[0].get("cmd"), "client|list", "client_list cmd")
    c.close()
    info = r.info()
    if not isinstance(info, dict) or "redis_version" not in info:
        raise Mismatch(f"info() has no redis_version: {info!r}")
    # RedisCluster checks this before it trusts CLUSTER SLOTS.
    expect(r.info("cluster").get("cluster_enabled"), 1, "info('cluster') cluster_enabled")


def cluster_client():
    rc = RedisCluster(host=host, port=port, decode_responses=True, socket_timeout=10)
    try:
        nodes = rc.get_nodes()
        expect([(n.host, n.port) for n in nodes], [(host, port)], "RedisCluster nodes")
        keys = [f"py:rc:{i}" for i in range(100)]
        for i, k in enumerate(keys):
            expect(rc.set(k, i), True, f"RedisCluster set {k}")
        expect(rc.get(keys[7]), "7", "RedisCluster get")
        expect(rc.mget_nonatomic(keys), [str(i) for i in range(100)], "RedisCluster mget_nonatomic")
        expect(rc.mset_nonatomic({k: f"m{i}" for i, k in enumerate(keys)}),
               [True] * len({rc.keyslot(k) for k in keys}), "RedisCluster mset_nonatomic")
        expect(rc.mget_nonatomic(keys[:3]), ["m0", "m1", "m2"], "RedisCluster mget after mset")
        expect(rc.exists(*keys), 100, "RedisCluster exists across slots")
        expect(rc.delete(*keys[:10]), 10, "RedisCluster delete across slots")
        expect(rc.mget(["{py:rc}a", "{py:rc}b"]), [None, None], "RedisCluster mget of one slot")
        p = rc.pipeline()
        for k in keys[10:30]:
            p.get(k)
        expect(p.execute(), [f"m{i}" for i in range(10, 30)], "RedisCluster pipeline")
        expect(rc.ping(), True, "RedisCluster ping")
        # RedisCluster.lock: registered scripts, SCRIPT LOAD sent to every node RedisCluster knows.
        lk = rc.lock("py:rc:lock", timeout=5)
        expect(lk.acquire(blocking=False), True, "RedisCluster lock acquire")
        lk.release()
    finally:
        rc.close()
    # read_from_replicas sends READONLY on every connection and fails it if refused.
    rc = RedisCluster(host=host, port=port, decode_responses=True, socket_timeout=10,
                      read_from_replicas=True)
    try:
        expect(rc.set("py:rc:ro", "r"), True, "RedisCluster(read_from_replicas) set")
        expect(rc.get("py:rc:ro"), "r", "RedisCluster(read_from_replicas) get")
    finally:
        rc.close()


section(cluster_client)

r.close()
other.close()
if failures:
    print(f"{len(failures)} section(s) failed in {mode} mode: {', '.join(failures)}")
    sys.exit(1)
print(f"all sections passed in {mode} mode")
