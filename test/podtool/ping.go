package main

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
)

// PingResult is what ping prints for each target, one JSON object per line.
type PingResult struct {
	Target   string  `json:"target"`
	Sent     int     `json:"sent"`
	Received int     `json:"received"`
	Lost     int     `json:"lost"`
	MaxRTTms float64 `json:"maxRttMs"`
}

// ping sends ICMP echo requests to every target every -i until -c requests were sent (or -d
// passed), waits -W for the last replies, and prints one PingResult per target. It fails when
// a target answered fewer than -min-replies requests or more than -max-lost went unanswered:
// `-c 3` checks reachability, `-i 10ms -d 20s -max-lost 0` checks that nothing was dropped.
func ping(args []string) error {
	fs := flag.NewFlagSet("ping", flag.ContinueOnError)
	interval := fs.Duration("i", 200*time.Millisecond, "interval between rounds")
	count := fs.Int("c", 0, "requests per target (0: until -d)")
	duration := fs.Duration("d", 0, "send for this long (with -c 0)")
	wait := fs.Duration("W", 2*time.Second, "wait for replies after the last request")
	minReplies := fs.Int("min-replies", 1, "fail when a target answered fewer requests")
	maxLost := fs.Int("max-lost", -1, "fail when more requests went unanswered for a target (-1: any number)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 || (*count <= 0 && *duration <= 0) {
		return fmt.Errorf("ping: usage: ping (-c N | -d DURATION) [-i INTERVAL] IP...")
	}
	targets := make([]net.IP, fs.NArg())
	for i, a := range fs.Args() {
		if targets[i] = net.ParseIP(a).To4(); targets[i] == nil {
			return fmt.Errorf("ping: %q is not an IPv4 address", a)
		}
	}
	conn, err := icmp.ListenPacket("ip4:icmp", "0.0.0.0")
	if err != nil {
		return fmt.Errorf("ping: raw ICMP socket (needs CAP_NET_RAW): %w", err)
	}
	defer conn.Close()
	var idb [2]byte
	_, _ = rand.Read(idb[:])
	id := int(binary.BigEndian.Uint16(idb[:]))

	var mu sync.Mutex
	sentAt := map[string]map[int]time.Time{} // target -> seq -> send time, until answered
	res := map[string]*PingResult{}
	for _, t := range targets {
		sentAt[t.String()] = map[int]time.Time{}
		res[t.String()] = &PingResult{Target: t.String()}
	}
	go func() { // receiver: match replies by id, peer and sequence
		buf := make([]byte, 1500)
		for {
			n, peer, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			m, err := icmp.ParseMessage(1, buf[:n])
			if err != nil || m.Type != ipv4.ICMPTypeEchoReply {
				continue
			}
			e, ok := m.Body.(*icmp.Echo)
			if !ok || e.ID != id {
				continue
			}
			p := peer.String()
			mu.Lock()
			if t0, ok := sentAt[p][e.Seq]; ok {
				delete(sentAt[p], e.Seq)
				r := res[p]
				r.Received++
				if rtt := float64(time.Since(t0).Microseconds()) / 1000; rtt > r.MaxRTTms {
					r.MaxRTTms = rtt
				}
			}
			mu.Unlock()
		}
	}()

	end := time.Now().Add(*duration)
	tick := time.NewTicker(*interval)
	defer tick.Stop()
	for seq := 0; ; seq++ {
		if *count > 0 && seq >= *count || *count <= 0 && time.Now().After(end) {
			break
		}
		for _, t := range targets {
			msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: id, Seq: seq & 0xffff, Data: []byte("ovsmesh-podtool")}}
			b, _ := msg.Marshal(nil)
			mu.Lock()
			sentAt[t.String()][seq&0xffff] = time.Now()
			res[t.String()].Sent++
			mu.Unlock()
			// A send error (no route yet) counts as a lost request, as the missing reply will.
			_, _ = conn.WriteTo(b, &net.IPAddr{IP: t})
		}
		<-tick.C
	}
	time.Sleep(*wait)

	mu.Lock()
	defer mu.Unlock()
	var failed []string
	enc := json.NewEncoder(os.Stdout)
	for _, t := range targets {
		r := res[t.String()]
		r.Lost = r.Sent - r.Received
		_ = enc.Encode(r)
		if r.Received < *minReplies || (*maxLost >= 0 && r.Lost > *maxLost) {
			failed = append(failed, fmt.Sprintf("%s (%d/%d answered)", r.Target, r.Received, r.Sent))
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("ping: %v", failed)
	}
	return nil
}
