package command

import (
	"bytes"

	"github.com/aster-proxy/aster/dataplane/resp"
)

// ReplyShape returns how the reply to args (a command of spec) converts between RESP2 and
// RESP3, as redis-server 7 answers each protocol: which arrays are maps, sets or pairs, which
// strings are doubles. nil means the reply converts generically (nulls only). The proxy uses
// it only when a client and the backends speak different protocols; TestReplyShapesMatchRedis
// checks the table against a live server in both directions.
func ReplyShape(spec *Spec, args [][]byte) *resp.Shape {
	if spec == nil || spec.ID >= len(shapeOf) {
		return nil
	}
	f := shapeOf[spec.ID]
	if f == nil {
		return nil
	}
	return f(args)
}

// Shapes, built once.
var (
	shMap      = &resp.Shape{Kind: resp.ShapeMap}
	shSet      = &resp.Shape{Kind: resp.ShapeSet}
	shDouble   = &resp.Shape{Kind: resp.ShapeDouble}
	shVerbatim = &resp.Shape{Kind: resp.ShapeVerbatim}
	shDoubles  = &resp.Shape{Kind: resp.ShapeArray, Elem: shDouble}
	shArrMaps  = &resp.Shape{Kind: resp.ShapeArray, Elem: shMap}
	// member and score: ZRANGE ... WITHSCORES and friends.
	shScorePairs = &resp.Shape{Kind: resp.ShapePairs, Items: []*resp.Shape{nil, shDouble}}
	shFieldPairs = &resp.Shape{Kind: resp.ShapePairs}
	shScoreTuple = &resp.Shape{Kind: resp.ShapeTuple, Items: []*resp.Shape{nil, shDouble}}
	// nullArray is a reply that is an array or, when there is nothing, a null array.
	nullArray = &resp.Shape{NullArray: true}
	// ZMPOP: key, then [member, score] pairs (already nested in RESP2).
	shZMPop = &resp.Shape{Kind: resp.ShapeTuple, NullArray: true,
		Items: []*resp.Shape{nil, {Kind: resp.ShapeArray, Elem: shScoreTuple}}}
	// BZPOPMIN/BZPOPMAX: key, member, score.
	shBZPop = &resp.Shape{Kind: resp.ShapeTuple, NullArray: true, Items: []*resp.Shape{nil, nil, shDouble}}
	// GEOPOS: [longitude, latitude] or a null array per member.
	shGeoPos = &resp.Shape{Kind: resp.ShapeArray, Elem: &resp.Shape{Kind: resp.ShapeArray, Elem: shDouble, NullArray: true}}
	// GEOSEARCH/GEORADIUS with WITH* options: [member, dist, hash, [lon, lat]]; the
	// coordinates are doubles, the distance stays a bulk string.
	shGeoItems = &resp.Shape{Kind: resp.ShapeArray, Elem: &resp.Shape{Kind: resp.ShapeArray, Elem: shDoubles}}
	// XREAD/XREADGROUP: stream name → entries, or a null array on timeout.
	shXRead = &resp.Shape{Kind: resp.ShapeNestedMap, NullArray: true}
	// XINFO STREAM FULL: groups and their consumers are maps as well.
	shXInfoFull = &resp.Shape{Kind: resp.ShapeMap, Fields: map[string]*resp.Shape{
		"groups": {Kind: resp.ShapeArray, Elem: &resp.Shape{Kind: resp.ShapeMap, Fields: map[string]*resp.Shape{
			"consumers": shArrMaps,
		}}},
	}}
	// COMMAND entries: flags, ACL categories, tips, key specs and subcommands are sets.
	shCommandEntry = &resp.Shape{Kind: resp.ShapeTuple, Items: []*resp.Shape{nil, nil, shSet, nil, nil, nil, shSet, shSet, shSet, shSet}}
	shCommandList  = &resp.Shape{Kind: resp.ShapeArray, Elem: shCommandEntry}
	// CLUSTER SLOTS: start, end, then nodes whose fourth element (metadata) is a map.
	shClusterSlots = &resp.Shape{Kind: resp.ShapeArray, Elem: &resp.Shape{Kind: resp.ShapeTuple,
		Items: []*resp.Shape{nil, nil}, Elem: &resp.Shape{Kind: resp.ShapeTuple, Items: []*resp.Shape{nil, nil, nil, shMap}}}}
	// CLUSTER SHARDS: a map per shard, with a map per node.
	shClusterShards = &resp.Shape{Kind: resp.ShapeArray, Elem: &resp.Shape{Kind: resp.ShapeMap,
		Fields: map[string]*resp.Shape{"nodes": shArrMaps}}}
)

func always(sh *resp.Shape) func([][]byte) *resp.Shape {
	return func([][]byte) *resp.Shape { return sh }
}

// hasArg reports whether an argument after the command name equals word (lower case),
// ignoring ASCII case.
func hasArg(args [][]byte, word string) bool {
	for _, a := range args[1:] {
		if len(a) == len(word) && bytes.EqualFold(a, []byte(word)) {
			return true
		}
	}
	return false
}

// withScores is pairs of member and score with WITHSCORES, a plain array without.
func withScores(args [][]byte) *resp.Shape {
	if hasArg(args, "withscores") {
		return shScorePairs
	}
	return nil
}

// sub is the subcommand, lower case (only for the few names compared below).
func sub(args [][]byte, i int) string {
	if len(args) <= i || len(args[i]) > 16 {
		return ""
	}
	return string(bytes.ToLower(args[i]))
}

var shapes = map[string]func([][]byte) *resp.Shape{
	"hgetall": always(shMap),
	"hrandfield": func(args [][]byte) *resp.Shape {
		if hasArg(args, "withvalues") {
			return shFieldPairs
		}
		return nil
	},
	"smembers": always(shSet), "sinter": always(shSet), "sunion": always(shSet), "sdiff": always(shSet),
	"spop": func(args [][]byte) *resp.Shape {
		if len(args) > 2 {
			return shSet
		}
		return nil
	},
	"zscore": always(shDouble), "zincrby": always(shDouble), "zmscore": always(shDoubles),
	"zadd": func(args [][]byte) *resp.Shape {
		if hasArg(args, "incr") {
			return shDouble
		}
		return nil
	},
	"zrange": withScores, "zrangebyscore": withScores, "zrevrange": withScores,
	"zrevrangebyscore": withScores, "zrandmember": withScores,
	"zunion": withScores, "zinter": withScores, "zdiff": withScores,
	"zpopmin": zpop, "zpopmax": zpop,
	"zrank": zrank, "zrevrank": zrank,
	"zmpop": always(shZMPop), "bzmpop": always(shZMPop),
	"bzpopmin": always(shBZPop), "bzpopmax": always(shBZPop),
	"lmpop": always(nullArray), "blmpop": always(nullArray),
	"lpop": popCount, "rpop": popCount,
	"blpop": always(nullArray), "brpop": always(nullArray),
	"brpoplpush": always(nullArray), "blmove": always(nullArray),
	"xread": always(shXRead), "xreadgroup": always(shXRead),
	"geopos":               always(shGeoPos),
	"georadius":            always(shGeoItems),
	"georadius_ro":         always(shGeoItems),
	"georadiusbymember":    always(shGeoItems),
	"georadiusbymember_ro": always(shGeoItems),
	"geosearch":            always(shGeoItems),
	"lcs": func(args [][]byte) *resp.Shape {
		if hasArg(args, "idx") {
			return shMap
		}
		return nil
	},
	"xinfo": func(args [][]byte) *resp.Shape {
		switch sub(args, 1) {
		case "stream":
			if hasArg(args, "full") {
				return shXInfoFull
			}
			return shMap
		case "groups", "consumers":
			return shArrMaps
		}
		return nil
	},
	// Answered by the proxy, which writes RESP2 and converts like a backend's reply.
	"info": always(shVerbatim),
	"command": func(args [][]byte) *resp.Shape {
		switch sub(args, 1) {
		case "", "info":
			return shCommandList
		case "docs":
			return shMap
		}
		return nil
	},
	"client": func(args [][]byte) *resp.Shape { // CLIENT LIST and INFO (clientlist.go)
		switch sub(args, 1) {
		case "list", "info":
			return shVerbatim
		}
		return nil
	},
	"cluster": func(args [][]byte) *resp.Shape {
		switch sub(args, 1) {
		case "info", "nodes":
			return shVerbatim
		case "slots":
			return shClusterSlots
		case "shards":
			return shClusterShards
		}
		return nil
	},
}

// popCount: LPOP key count on a missing key is a null array; LPOP key a null bulk.
func popCount(args [][]byte) *resp.Shape {
	if len(args) > 2 {
		return nullArray
	}
	return nil
}

// zpop: ZPOPMIN key is [member, score]; with a count, pairs.
func zpop(args [][]byte) *resp.Shape {
	if len(args) > 2 {
		return shScorePairs
	}
	return shScoreTuple
}

// zrank: ZRANK key member WITHSCORE (Redis 7.2) is [rank, score].
func zrank(args [][]byte) *resp.Shape {
	if hasArg(args, "withscore") {
		return shScoreTuple
	}
	return nil
}

// shapeOf is shapes indexed by Spec.ID, so that ReplyShape needs no map lookup. It is built
// after command.go's init has numbered the specs (init functions run in file name order).
var shapeOf []func([][]byte) *resp.Shape

func init() {
	shapeOf = make([]func([][]byte) *resp.Shape, len(table))
	for name, f := range shapes {
		s := byName[name]
		if s == nil {
			panic("command: reply shape for unknown command " + name)
		}
		shapeOf[s.ID] = f
	}
}
