// Command bench is the Go third of tests/interop/bench.sh: the same measures
// as examples/bench.rs, with github.com/apache/rocketmq-client-go/v2 and its
// defaults.
//
//   - send: BENCH_N messages of BENCH_SIZE bytes, Producer.SendSync (its own
//     round-robin queue selection, default retries) from BENCH_THREADS
//     goroutines sharing one producer;
//   - pull: all of them read back with the pull consumer's PullFrom (32 per
//     pull) from BENCH_THREADS goroutines, each taking whole queues.
//
// BENCH_WARMUP messages are sent (and pulled) first, untimed, to the same
// topic. The topic, BENCH_TOPIC, must exist (bench.sh creates it with
// examples/bench.rs); the name server is ROCKETMQ_NAMESRV_ADDR. Output:
//
//	go send msgs=N size=S threads=T msgs_per_s=X p50_us=X p99_us=X errors=E
//	go pull msgs=N size=S threads=T msgs_per_s=X
package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/apache/rocketmq-client-go/v2/rlog"
)

func envInt(name string, dflt int) int {
	v := os.Getenv(name)
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

// span is the first and last queue offset written to a queue.
type span struct{ first, last int64 }

type sent struct {
	spans     map[primitive.MessageQueue]span
	latencies []int64
	elapsed   time.Duration
	errors    int64
}

func send(p interface {
	SendSync(context.Context, ...*primitive.Message) (*primitive.SendResult, error)
}, topic string, body []byte, n, threads int) sent {
	out := sent{spans: map[primitive.MessageQueue]span{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var errors int64
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
			spans := map[primitive.MessageQueue]span{}
			for i := 0; i < count; i++ {
				msg := primitive.NewMessage(topic, body)
				t0 := time.Now()
				r, err := p.SendSync(context.Background(), msg)
				d := time.Since(t0)
				if err != nil || r.Status != primitive.SendOK {
					if atomic.AddInt64(&errors, 1) <= 5 {
						fmt.Fprintf(os.Stderr, "send: %v %v\n", err, r)
					}
					continue
				}
				lat = append(lat, d.Nanoseconds())
				q := *r.MessageQueue
				s, ok := spans[q]
				if !ok {
					s = span{r.QueueOffset, r.QueueOffset}
				}
				if r.QueueOffset < s.first {
					s.first = r.QueueOffset
				}
				if r.QueueOffset > s.last {
					s.last = r.QueueOffset
				}
				spans[q] = s
			}
			mu.Lock()
			defer mu.Unlock()
			out.latencies = append(out.latencies, lat...)
			for q, s := range spans {
				if o, ok := out.spans[q]; ok {
					if o.first < s.first {
						s.first = o.first
					}
					if o.last > s.last {
						s.last = o.last
					}
				}
				out.spans[q] = s
			}
		}(count)
	}
	wg.Wait()
	out.elapsed = time.Since(start)
	out.errors = errors
	return out
}

type puller interface {
	PullFrom(context.Context, *primitive.MessageQueue, int64, int) (*primitive.PullResult, error)
}

// pull reads [first, last] of every queue; goroutines take whole queues.
func pull(c puller, spans map[primitive.MessageQueue]span, threads int) (int64, error) {
	type job struct {
		q primitive.MessageQueue
		s span
	}
	jobs := make(chan job, len(spans))
	for q, s := range spans {
		jobs <- job{q, s}
	}
	close(jobs)
	var count int64
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	deadline := time.Now().Add(120 * time.Second)
	for t := 0; t < threads; t++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				offset := j.s.first
				for offset <= j.s.last {
					if time.Now().After(deadline) {
						once.Do(func() { firstErr = fmt.Errorf("pull of %v took over 120 s", j.q) })
						return
					}
					q := j.q
					r, err := c.PullFrom(context.Background(), &q, offset, 32)
					if err != nil {
						once.Do(func() { firstErr = fmt.Errorf("pull %v at %d: %w", j.q, offset, err) })
						return
					}
					switch r.Status {
					case primitive.PullFound:
						var n int64
						for _, m := range r.GetMessageExts() {
							if m.QueueOffset <= j.s.last {
								n++
							}
						}
						atomic.AddInt64(&count, n)
						offset = r.NextBeginOffset
					case primitive.PullNoNewMsg, primitive.PullNoMsgMatched:
						time.Sleep(time.Millisecond)
					default:
						once.Do(func() { firstErr = fmt.Errorf("pull %v at %d: status %v", j.q, offset, r.Status) })
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	return count, firstErr
}

// percentile is the nearest-rank percentile (p in (0, 1]) of sorted values.
func percentile(sorted []int64, p float64) int64 {
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
	return sorted[idx]
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
	n := envInt("BENCH_N", 20000)
	size := envInt("BENCH_SIZE", 128)
	threads := envInt("BENCH_THREADS", 4)
	warmup := envInt("BENCH_WARMUP", 2000)
	body := make([]byte, size)
	for i := range body {
		body[i] = byte('a' + i%26)
	}
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
	warm := send(p, topic, body, warmup, threads)
	s := send(p, topic, body, n, threads)
	_ = p.Shutdown()
	sort.Slice(s.latencies, func(i, j int) bool { return s.latencies[i] < s.latencies[j] })
	fmt.Printf("go send msgs=%d size=%d threads=%d msgs_per_s=%d p50_us=%d p99_us=%d errors=%d\n", n, size, threads,
		int64(math.Round(float64(len(s.latencies))/s.elapsed.Seconds())), percentile(s.latencies, 0.50)/1000,
		percentile(s.latencies, 0.99)/1000, s.errors)

	c, err := consumer.NewPullConsumer(
		consumer.WithNameServer([]string{namesrv}),
		consumer.WithGroupName(fmt.Sprintf("bench_go_cg_%d", pid)),
		consumer.WithInstance(fmt.Sprintf("bench-go-consumer-%d", pid)),
	)
	if err != nil {
		fail("pull consumer: %v", err)
	}
	// Assign no queue: no background pulling, only our PullFrom calls.
	if err := c.Assign(topic, nil); err != nil {
		fail("assign: %v", err)
	}
	if err := c.Start(); err != nil {
		fail("pull consumer start: %v", err)
	}
	// The consume queues are built from the commit log asynchronously: wait
	// (untimed) until the last message of every queue can be pulled.
	last := map[primitive.MessageQueue]span{}
	for q, sp := range s.spans {
		last[q] = span{sp.last, sp.last}
	}
	if _, err := pull(c, last, threads); err != nil {
		fail("%v", err)
	}
	if _, err := pull(c, warm.spans, threads); err != nil {
		fail("%v", err)
	}
	t0 := time.Now()
	pulled, err := pull(c, s.spans, threads)
	dt := time.Since(t0)
	if err != nil {
		fail("%v", err)
	}
	_ = c.Shutdown()
	fmt.Printf("go pull msgs=%d size=%d threads=%d msgs_per_s=%d\n", pulled, size, threads,
		int64(math.Round(float64(pulled)/dt.Seconds())))
	if s.errors != 0 || pulled != int64(len(s.latencies)) {
		os.Exit(1)
	}
}
