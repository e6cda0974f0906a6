// Command mixload is bench/peer.sh's load generator for what redis-benchmark cannot send: a
// mix of commands in one pipeline (issue #20: 80% GET, 20% SET). C clients each keep one
// pipeline of P commands in flight, each command a GET with probability -get, else a SET of a
// -d byte value, on keys key:NNNNNNNNNNNN (redis-benchmark's __rand_int__ form) drawn from -r.
// It stops after -n commands and prints one line in redis-benchmark's --csv form (rps, then
// avg/min/p50/p95/p99/max latency in ms, each command charged its pipeline's round trip, as
// redis-benchmark does), so that peer.sh reads both alike. Any error reply fails the run.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:6379", "host:port to drive")
	clients := flag.Int("c", 50, "clients (connections), each with one pipeline in flight")
	total := flag.Int("n", 100000, "commands in all")
	pipe := flag.Int("P", 16, "commands per pipeline")
	keys := flag.Int("r", 100000, "key space: keys key:000000000000 .. r-1")
	size := flag.Int("d", 64, "SET value size in bytes")
	get := flag.Float64("get", 0.8, "share of GETs (the rest are SETs)")
	name := flag.String("name", "MIX", "the test's name in the CSV line")
	flag.Parse()
	if *clients < 1 || *total < 1 || *pipe < 1 || *keys < 1 || *size < 0 || *get < 0 || *get > 1 {
		fmt.Fprintln(os.Stderr, "mixload: -c, -n, -P and -r must be at least 1, -d at least 0, -get within 0..1")
		os.Exit(2)
	}
	batches := int64((*total + *pipe - 1) / *pipe)
	value := make([]byte, *size)
	for i := range value {
		value[i] = 'x'
	}
	var left atomic.Int64
	left.Store(batches)
	lat := make([][]time.Duration, *clients)
	errs := make(chan error, *clients)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range *clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			lat[i], err = client(*addr, &left, *pipe, *keys, *get, value, uint64(i))
			if err != nil {
				errs <- err
				left.Store(0)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		fmt.Fprintln(os.Stderr, "mixload:", err)
		os.Exit(1)
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	var sum time.Duration
	for _, d := range all {
		sum += d
	}
	ms := func(d time.Duration) string { return strconv.FormatFloat(d.Seconds()*1e3, 'f', 3, 64) }
	pct := func(p float64) time.Duration { return all[min(len(all)-1, int(p*float64(len(all))))] }
	n := len(all) * *pipe
	fmt.Println(`"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"`)
	fmt.Printf("%q,%q,%q,%q,%q,%q,%q,%q\n", *name, strconv.FormatFloat(float64(n)/elapsed.Seconds(), 'f', 2, 64),
		ms(sum/time.Duration(len(all))), ms(all[0]), ms(pct(0.50)), ms(pct(0.95)), ms(pct(0.99)), ms(all[len(all)-1]))
}

// client sends pipelines until left runs out and returns each one's round trip.
func client(addr string, left *atomic.Int64, pipe, keys int, get float64, value []byte, seed uint64) ([]time.Duration, error) {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	w := bufio.NewWriterSize(nc, 64<<10)
	r := bufio.NewReaderSize(nc, 64<<10)
	var lat []time.Duration
	var key [16]byte
	copy(key[:], "key:")
	for left.Add(-1) >= 0 {
		for range pipe {
			k := appendPadded(key[:4], rng.IntN(keys), 12) // key:NNNNNNNNNNNN, as redis-benchmark's
			if rng.Float64() < get {
				fmt.Fprintf(w, "*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n", len(k), k)
			} else {
				fmt.Fprintf(w, "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n", len(k), k, len(value))
				w.Write(value)
				w.WriteString("\r\n")
			}
		}
		t := time.Now()
		if err := w.Flush(); err != nil {
			return nil, err
		}
		for range pipe {
			if err := skipReply(r); err != nil {
				return nil, err
			}
		}
		lat = append(lat, time.Since(t))
	}
	return lat, nil
}

// appendPadded appends v in width decimal digits (zero-padded).
func appendPadded(b []byte, v, width int) []byte {
	var d [20]byte
	s := strconv.AppendInt(d[:0], int64(v), 10)
	for i := len(s); i < width; i++ {
		b = append(b, '0')
	}
	return append(b, s...)
}

// skipReply reads one reply to GET or SET: a bulk (or null), +OK; an error reply is an error.
func skipReply(r *bufio.Reader) error {
	line, err := r.ReadSlice('\n')
	if err != nil {
		return err
	}
	if len(line) < 3 {
		return errors.New("short reply line")
	}
	switch line[0] {
	case '+', ':':
		return nil
	case '-':
		return fmt.Errorf("error reply: %s", line[:len(line)-2])
	case '$':
		n, err := strconv.Atoi(string(line[1 : len(line)-2]))
		if err != nil {
			return fmt.Errorf("bad bulk length %q", line)
		}
		if n < 0 {
			return nil
		}
		_, err = r.Discard(n + 2)
		return err
	}
	return fmt.Errorf("unexpected reply %q", line)
}
