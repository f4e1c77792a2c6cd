// Command bench is the Go third of tests/interop/bench.sh: the same jobs as
// examples/bench.rs, with github.com/apache/rocketmq-client-go/v2's public
// API and its defaults. The first argument is the mode:
//
//   - send: a producer; the first message is sent at once (its
//     acknowledgement time since BENCH_T0_US, the script's clock when it
//     launched this process, is the start-up figure), BENCH_WARMUP untimed
//     sends, then for every size of BENCH_SIZES: BENCH_SEND_N SendSync calls
//     from 1 goroutine and BENCH_SEND8_N from BENCH_THREADS goroutines
//     sharing the producer;
//   - push: a push consumer of a new group, from the first offset, drains the
//     BENCH_DRAIN_N messages stored in BENCH_TOPIC: time from Start until the
//     last distinct one is handed to the listener.
//
// The topic, BENCH_TOPIC, must exist (bench.sh creates it with
// examples/bench.rs); the name server is ROCKETMQ_NAMESRV_ADDR. Output lines
// as examples/bench.rs prints them, with "go" first. CPU seconds are those of
// the whole process during the measured part (/proc/self/stat), peak RSS is
// VmHWM (/proc/self/status).
package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/apache/rocketmq-client-go/v2/rlog"
)

func envInt(name string, dflt int) int {
	v := strings.TrimSpace(os.Getenv(name))
	if v == "" {
		return dflt
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		fail("%s=%q is not a number", name, v)
	}
	return n
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "go bench: "+format+"\n", args...)
	os.Exit(1)
}

func sizes() []int {
	v := os.Getenv("BENCH_SIZES")
	if v == "" {
		v = "128,4096"
	}
	var out []int
	for _, s := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			fail("BENCH_SIZES: %q is not a number", s)
		}
		out = append(out, n)
	}
	return out
}

func body(size int) []byte {
	b := make([]byte, size)
	for i := range b {
		b[i] = byte('a' + i%26)
	}
	return b
}

// cpuSeconds is the user + system CPU time of the whole process so far.
func cpuSeconds() float64 {
	stat, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0
	}
	s := string(stat)
	f := strings.Fields(s[strings.LastIndex(s, ")")+1:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	k, _ := strconv.ParseFloat(f[12], 64)
	return (u + k) / 100
}

// peakRssKb is VmHWM in KiB.
func peakRssKb() int64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			f := strings.Fields(l[6:])
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

// percentileUs is the nearest-rank percentile (p in (0, 1]) of sorted ns values, in µs.
func percentileUs(sorted []int64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	idx := int(math.Ceil(p*float64(len(sorted)))) - 1
	if idx < 0 {
		idx = 0
	}
	if idx >= len(sorted) {
		idx = len(sorted) - 1
	}
	return float64(sorted[idx]) / 1000
}

type phase struct {
	latencies []int64
	elapsed   time.Duration
	errors    int64
}

func (p phase) print(threads, size int) {
	sort.Slice(p.latencies, func(i, j int) bool { return p.latencies[i] < p.latencies[j] })
	l := p.latencies
	fmt.Printf("go send threads=%d size=%d msgs=%d msgs_per_s=%.0f p50_us=%.1f p99_us=%.1f p999_us=%.1f errors=%d\n",
		threads, size, len(l), float64(len(l))/p.elapsed.Seconds(), percentileUs(l, 0.50), percentileUs(l, 0.99),
		percentileUs(l, 0.999), p.errors)
}

func sendPhase(p interface {
	SendSync(context.Context, ...*primitive.Message) (*primitive.SendResult, error)
}, topic string, body []byte, n, threads int) phase {
	var out phase
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for t := 0; t < threads; t++ {
		count := n / threads
		if t < n%threads {
			count++
		}
		wg.Add(1)
		go func(count int) {
			defer wg.Done()
			lat := make([]int64, 0, count)
			for i := 0; i < count; i++ {
				msg := primitive.NewMessage(topic, body)
				t0 := time.Now()
				r, err := p.SendSync(context.Background(), msg)
				d := time.Since(t0)
				if err != nil || r.Status != primitive.SendOK {
					if atomic.AddInt64(&out.errors, 1) <= 5 {
						fmt.Fprintf(os.Stderr, "send: %v %v\n", err, r)
					}
					continue
				}
				lat = append(lat, d.Nanoseconds())
			}
			mu.Lock()
			out.latencies = append(out.latencies, lat...)
			mu.Unlock()
		}(count)
	}
	wg.Wait()
	out.elapsed = time.Since(start)
	return out
}

func runSend(namesrv, topic string) bool {
	sz := sizes()
	sendN := envInt("BENCH_SEND_N", 20000)
	send8N := envInt("BENCH_SEND8_N", 40000)
	threads := envInt("BENCH_THREADS", 8)
	warmup := envInt("BENCH_WARMUP", 5000)
	pid := os.Getpid()
	p, err := producer.NewDefaultProducer(
		producer.WithNameServer([]string{namesrv}),
		producer.WithGroupName(fmt.Sprintf("bench_go_pg_%d", pid)),
		producer.WithInstanceName(fmt.Sprintf("bench-go-producer-%d", pid)),
	)
	if err != nil {
		fail("producer: %v", err)
	}
	if err := p.Start(); err != nil {
		fail("producer start: %v", err)
	}
	r, err := p.SendSync(context.Background(), primitive.NewMessage(topic, body(sz[0])))
	firstAckMs := -1.0
	if t0, e := strconv.ParseInt(strings.TrimSpace(os.Getenv("BENCH_T0_US")), 10, 64); e == nil {
		firstAckMs = float64(time.Now().UnixMicro()-t0) / 1000
	}
	if err != nil || r.Status != primitive.SendOK {
		fail("first send: %v %v", err, r)
	}
	for _, size := range sz {
		sendPhase(p, topic, body(size), warmup/len(sz), threads)
	}
	cpu0 := cpuSeconds()
	var errors int64
	msgs := 0
	for _, size := range sz {
		b := body(size)
		for _, nt := range [][2]int{{sendN, 1}, {send8N, threads}} {
			ph := sendPhase(p, topic, b, nt[0], nt[1])
			errors += ph.errors
			msgs += len(ph.latencies)
			ph.print(nt[1], size)
		}
	}
	cpu := cpuSeconds() - cpu0
	_ = p.Shutdown()
	fmt.Printf("go proc first_ack_ms=%.1f cpu_s=%.2f msgs=%d rss_kb=%d\n", firstAckMs, cpu, msgs, peakRssKb())
	return errors == 0
}

// drain counts distinct (store host, queue id, offset) triples.
type drain struct {
	want     int
	mu       sync.Mutex
	seen     map[string][]uint64
	distinct int
	dups     int
	doneAt   time.Time
	done     chan struct{}
}

func (d *drain) record(msgs []*primitive.MessageExt) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, m := range msgs {
		key := m.StoreHost + "/" + strconv.Itoa(m.Queue.QueueId)
		bits := d.seen[key]
		word, bit := int(m.QueueOffset/64), uint(m.QueueOffset%64)
		for len(bits) <= word {
			bits = append(bits, 0)
		}
		if bits[word]&(1<<bit) != 0 {
			d.dups++
		} else {
			bits[word] |= 1 << bit
			d.distinct++
			if d.distinct == d.want {
				d.doneAt = time.Now()
				close(d.done)
			}
		}
		d.seen[key] = bits
	}
}

func runPush(namesrv, topic string) bool {
	d := &drain{want: envInt("BENCH_DRAIN_N", 1000000), seen: map[string][]uint64{}, done: make(chan struct{})}
	limit := time.Duration(envInt("BENCH_DRAIN_TIMEOUT", 600)) * time.Second
	pid := os.Getpid()
	c, err := consumer.NewPushConsumer(
		consumer.WithNameServer([]string{namesrv}),
		consumer.WithGroupName(fmt.Sprintf("bench_go_push_cg_%d_%d", pid, time.Now().UnixNano()%1000000000)),
		consumer.WithInstance(fmt.Sprintf("bench-go-push-%d", pid)),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset),
	)
	if err != nil {
		fail("push consumer: %v", err)
	}
	err = c.Subscribe(topic, consumer.MessageSelector{}, func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		d.record(msgs)
		return consumer.ConsumeSuccess, nil
	})
	if err != nil {
		fail("subscribe: %v", err)
	}
	fmt.Fprintln(os.Stderr, "go push: defaults (ConsumeGoroutineNums=20, PullBatchSize=32, ConsumeMessageBatchMaxSize=1, PullThresholdForQueue=1024)")
	cpu0 := cpuSeconds()
	start := time.Now()
	if err := c.Start(); err != nil {
		fail("push consumer start: %v", err)
	}
	select {
	case <-d.done:
	case <-time.After(limit):
	}
	_ = c.Shutdown()
	cpu := cpuSeconds() - cpu0
	d.mu.Lock()
	defer d.mu.Unlock()
	secs := math.NaN()
	if !d.doneAt.IsZero() {
		secs = d.doneAt.Sub(start).Seconds()
	}
	fmt.Printf("go drain kind=push msgs=%d distinct=%d dups=%d secs=%.3f msgs_per_s=%.0f cpu_s=%.2f rss_kb=%d\n",
		d.want, d.distinct, d.dups, secs, float64(d.want)/secs, cpu, peakRssKb())
	return !d.doneAt.IsZero() && d.distinct == d.want
}

func main() {
	rlog.SetLogLevel("error")
	topic := os.Getenv("BENCH_TOPIC")
	if topic == "" {
		fail("BENCH_TOPIC is not set (the topic must exist on both brokers)")
	}
	namesrv := os.Getenv("ROCKETMQ_NAMESRV_ADDR")
	if namesrv == "" {
		namesrv = "127.0.0.1:19876"
	}
	mode := "send"
	if len(os.Args) > 1 {
		mode = os.Args[1]
	}
	ok := false
	switch mode {
	case "send":
		ok = runSend(namesrv, topic)
	case "push":
		ok = runPush(namesrv, topic)
	default:
		fail("unknown mode %q (send, push)", mode)
	}
	if !ok {
		os.Exit(1)
	}
}
