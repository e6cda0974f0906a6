package command

import (
	"regexp"
	"strings"
	"testing"

	"github.com/aster-proxy/aster/dataplane/resp"
	"github.com/aster-proxy/aster/internal/redistest"
)

// shapeCases run against a live redis-server over RESP2 and RESP3. Each starts from an empty
// server with its setup; collections that a command picks from at random hold one element.
var shapeCases = []struct {
	setup string // commands separated by ';'
	cmd   string
	fuzzy bool // the reply has times in it: compare with every integer masked
}{
	{"hset h a 1 b 2", "hgetall h", false},
	{"", "hgetall nokey", false},
	{"hset h a 1", "hrandfield h 2 withvalues", false},
	{"hset h a 1", "hrandfield h 2", false},
	{"hset h a 1", "hmget h a nope", false},
	{"sadd s x y", "smembers s", false},
	{"sadd s x y;sadd t y", "sinter s t", false},
	{"sadd s x y;sadd t z", "sunion s t", false},
	{"sadd s x y;sadd t y", "sdiff s t", false},
	{"sadd s x", "spop s 1", false},
	{"sadd s x", "spop s", false},
	{"", "spop nokey 2", false},
	{"sadd s x", "srandmember s 3", false},
	{"sadd s x y", "smismember s x q", false},
	{"zadd z 1.5 m1 2 m2 inf m3", "zscore z m1", false},
	{"zadd z inf m3", "zscore z m3", false},
	{"", "zscore z nope", false},
	{"zadd z 1.5 m1", "zincrby z 1 m1", false},
	{"zadd z 1.5 m1", "zadd z incr 2 m1", false},
	{"zadd z 1.5 m1", "zadd z nx incr 2 m1", false},
	{"zadd z 1.5 m1", "zmscore z m1 nope", false},
	{"zadd z 1.5 m1 2 m2", "zrange z 0 -1 withscores", false},
	{"zadd z 1.5 m1 2 m2", "zrange z 0 -1", false},
	{"zadd z 1.5 m1 2 m2", "zrangebyscore z -inf +inf withscores", false},
	{"zadd z 1.5 m1 2 m2", "zrevrange z 0 -1 WITHSCORES", false},
	{"zadd z 1.5 m1 2 m2", "zrevrangebyscore z +inf -inf withscores", false},
	{"zadd z 1.5 m1", "zrandmember z 2 withscores", false},
	{"zadd z 1.5 m1 2 m2", "zunion 1 z withscores", false},
	{"zadd z 1.5 m1 2 m2", "zinter 1 z withscores", false},
	{"zadd z 1.5 m1 2 m2", "zdiff 1 z withscores", false},
	{"zadd z 1.5 m1 2 m2", "zpopmin z", false},
	{"zadd z 1.5 m1 2 m2", "zpopmax z 2", false},
	{"zadd z 1.5 m1 2 m2", "zpopmin z 1", false},
	{"", "zpopmin nokey", false},
	{"zadd z 1.5 m1 2 m2", "zmpop 1 z min count 2", false},
	{"", "zmpop 1 nokey min", false},
	{"rpush l a b", "lmpop 1 l left count 1", false},
	{"", "lmpop 1 nokey left", false},
	{"zadd z 1.5 m1", "zrank z m1", false},
	{"zadd z 1.5 m1", "zscan z 0", false},
	{"", "get nokey", false},
	{"set a 1", "mget a nokey", false},
	{"rpush l a", "lpos l zz", false},
	{"set f 1", "incrbyfloat f 1.5", false},
	{"hset h a 1", "hincrbyfloat h a 0.5", false},
	{"geoadd g 13.361389 38.115556 Palermo", "geopos g Palermo nope", false},
	{"geoadd g 13.361389 38.115556 Palermo", "geodist g Palermo Palermo", false},
	{"geoadd g 13.361389 38.115556 Palermo", "geosearch g fromlonlat 15 37 byradius 200 km withcoord withdist withhash", false},
	{"geoadd g 13.361389 38.115556 Palermo", "geosearch g fromlonlat 15 37 byradius 200 km", false},
	{"geoadd g 13.361389 38.115556 Palermo", "georadius_ro g 15 37 200 km withcoord", false},
	{"geoadd g 13.361389 38.115556 Palermo", "georadiusbymember_ro g Palermo 10 km withdist withcoord", false},
	{"set k1 ohmytext;set k2 mynewtext", "lcs k1 k2 idx", false},
	{"set k1 ohmytext;set k2 mynewtext", "lcs k1 k2", false},
	{"xadd st 1-1 f v", "xinfo stream st", false},
	{"xadd st 1-1 f v;xgroup create st g 0", "xinfo groups st", false},
	{"xadd st 1-1 f v;xgroup create st g 0;xreadgroup group g c1 count 1 streams st >", "xinfo consumers st g", true},
	{"xadd st 1-1 f v;xgroup create st g 0;xreadgroup group g c1 count 1 streams st >", "xinfo stream st full", true},
	{"xadd st 1-1 f v", "xrange st - +", false},
	{"xadd st 1-1 f v;xgroup create st g 0;xreadgroup group g c1 count 1 streams st >", "xpending st g", false},
	{"xadd st 1-1 f v", "xread count 1 streams st 0", false},
	{"xadd st 1-1 f v", "xread count 1 streams st 1-1", false},
	// Blocking commands, with data or a short timeout: for dedicated connections.
	{"rpush l a", "blpop l 1", false},
	{"", "blpop nokey 0.01", false},
	{"", "brpop nokey 0.01", false},
	{"zadd z 1.5 m", "bzpopmin z 1", false},
	{"", "bzpopmax nokey 0.01", false},
	{"", "blmpop 0.01 1 nokey left", false},
	{"zadd z 1.5 m", "bzmpop 1 1 z min", false},
	{"", "bzmpop 0.01 1 nokey min", false},
	{"xadd st 1-1 f v", "xread block 10 streams st $", false},
	{"", "brpoplpush nokey other 0.01", false},
	{"", "blmove nokey other left right 0.01", false},
	{"rpush l a", "blmove l other left right 1", false},
	// Missing keys, where RESP2 has a null bulk, a null array or an empty array.
	{"", "lpop nokey 2", false},
	{"", "rpop nokey 2", false},
	{"", "lpop nokey", false},
	{"", "zrandmember nokey", false},
	{"", "srandmember nokey", false},
	{"", "srandmember nokey 2", false},
	{"", "hrandfield nokey", false},
	{"", "lpos nokey a count 0", false},
	{"", "sort nokey", false},
	{"", "zpopmax nokey 2", false},
	{"", "xrange nokey - +", false},
	{"", "object encoding nokey", false},
	{"", "getdel nokey", false},
	{"", "lindex nokey 0", false},
	{"", "hget nokey f", false},
	{"", "lrange nokey 0 -1", false},
	{"", "geohash nokey a", false},
	{"", "geodist nokey a b", false},
	{"", "smembers nokey", false},
	{"", "zscore nokey m", false},
	{"", "zmscore nokey m", false},
	{"", "xinfo stream nokey", false},
	{"", "memory usage nokey", false},
	{"", "dump nokey", false},
	{"set k v", "set k w nx", false},
	{"set k v", "set k w get", false},
	{"", "xadd nokey nomkstream * f v", false},
	{"", "zadd nokey xx incr 1 m", false},
	{"sadd s 1 2", "sintercard 1 s", false},
	{"zadd z 1 a 2 b", "zrangestore dst z 0 -1", false},
	{"", "object help", false},
	{"rpush l a b a", "lpos l a count 0", false},
	{"set k v", "expiretime k", false},
	{"zadd z 1 a", "zrevrank z a", false},
	{"zadd z 1 a 2 b", "zcount z -inf +inf", false},
	{"hset h a 1", "hscan h 0", false},
	{"zadd z 1 a", "zrangebylex z - +", false},
	{"hset h a 1", "hkeys h", false},
	{"hset h a 1", "hvals h", false},
	{"set k 1", "bitfield k get u8 0", false},
	{"pfadd p a b", "pfcount p", false},
	{"hset h a 1", "type h", false},
	{"hset h a 1", "exists h", false},
}

var intFrame = regexp.MustCompile(`:\d+\r\n`)

// TestReplyShapesMatchRedis asks a real redis-server every case over RESP2 and over RESP3 and
// checks that converting either reply with the command's shape gives exactly the other: the
// shape table is what Redis does, in both directions.
func TestReplyShapesMatchRedis(t *testing.T) {
	srv := redistest.Start(t)
	c2 := redistest.DialFrames(t, srv.Addr)
	c3 := redistest.DialFrames(t, srv.Addr)
	if r := c3.Do("HELLO", "3"); r[0] != '%' {
		t.Fatalf("HELLO 3: %q", r)
	}
	run := func(c *redistest.FrameConn, setup, cmd string) []byte {
		c.Do("FLUSHALL")
		for _, s := range strings.Split(setup, ";") {
			if s != "" {
				if r := c.Do(strings.Fields(s)...); resp.IsError(r) {
					t.Fatalf("setup %q: %q", s, r)
				}
			}
		}
		return c.Do(strings.Fields(cmd)...)
	}
	for _, tc := range shapeCases {
		r2 := run(c2, tc.setup, tc.cmd)
		r3 := run(c3, tc.setup, tc.cmd)
		args := fieldsBytes(tc.cmd)
		sh := ReplyShape(Lookup(args[0]), args)
		up, down := resp.ToRESP3(nil, r2, sh), resp.ToRESP2(nil, r3, sh)
		want3, want2 := r3, r2
		if tc.fuzzy {
			up, down = intFrame.ReplaceAll(up, []byte(":N\r\n")), intFrame.ReplaceAll(down, []byte(":N\r\n"))
			want3, want2 = intFrame.ReplaceAll(r3, []byte(":N\r\n")), intFrame.ReplaceAll(r2, []byte(":N\r\n"))
		}
		if string(up) != string(want3) {
			t.Errorf("%s: RESP2 %q converted to RESP3\n got %q\nwant %q", tc.cmd, r2, up, want3)
		}
		if string(down) != string(want2) {
			t.Errorf("%s: RESP3 %q converted to RESP2\n got %q\nwant %q", tc.cmd, r3, down, want2)
		}
	}
}

func fieldsBytes(s string) [][]byte {
	var out [][]byte
	for _, f := range strings.Fields(s) {
		out = append(out, []byte(f))
	}
	return out
}

// TestReplyShapeNames: every name in the shape table is a command.
func TestReplyShapeNames(t *testing.T) {
	for name := range shapes {
		if Lookup([]byte(name)) == nil {
			t.Errorf("shape for unknown command %q", name)
		}
	}
	if ReplyShape(Lookup([]byte("get")), fieldsBytes("get k")) != nil {
		t.Error("GET has a shape; want generic conversion")
	}
}
