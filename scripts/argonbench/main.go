// Command argonbench measures raw argon2id hashes per second with a given
// number of workers, the baseline scripts/bench.sh compares password grants
// with. It prints one number: hashes per second.
//
//	go run ./scripts/argonbench -workers 1 -seconds 10 -m 19456 -t 2 -p 1
package main

import (
	"flag"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/argon2"
)

func main() {
	workers := flag.Int("workers", 1, "hashes computed at once")
	seconds := flag.Float64("seconds", 10, "how long to measure")
	m := flag.Uint("m", 19456, "argon2id memory (KiB)")
	t := flag.Uint("t", 2, "argon2id passes")
	p := flag.Uint("p", 1, "argon2id parallelism")
	flag.Parse()
	var n atomic.Int64
	deadline := time.Now().Add(time.Duration(*seconds * float64(time.Second)))
	start := time.Now()
	var wg sync.WaitGroup
	for range *workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			salt := []byte("0123456789abcdef")
			for time.Now().Before(deadline) {
				argon2.IDKey([]byte("wrong password"), salt, uint32(*t), uint32(*m), uint8(*p), 32)
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	fmt.Printf("%.2f\n", float64(n.Load())/time.Since(start).Seconds())
}
