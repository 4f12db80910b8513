package chain

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestFSSyncerCoalescesAndAlwaysStartsAfterTheCall(t *testing.T) {
	y := newFSSyncer()
	var flushes atomic.Int32
	var mu sync.Mutex
	var starts []time.Time
	flush := func() error {
		mu.Lock()
		starts = append(starts, time.Now())
		mu.Unlock()
		flushes.Add(1)
		time.Sleep(30 * time.Millisecond)
		return nil
	}
	var wg sync.WaitGroup
	calls := make([]time.Time, 20)
	returns := make([]time.Time, 20)
	for i := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			calls[i] = time.Now()
			y.sync(flush)
			returns[i] = time.Now()
		}()
		time.Sleep(3 * time.Millisecond)
	}
	wg.Wait()
	n := flushes.Load()
	if n >= 20 || n < 2 {
		t.Fatalf("%d flushes for 20 overlapping calls", n)
	}
	// Every call is covered by a flush that started after it.
	for i, c := range calls {
		covered := false
		for _, s := range starts {
			if !s.Before(c) && s.Before(returns[i]) {
				covered = true
			}
		}
		if !covered {
			t.Fatalf("call %d at %v had no flush start between the call and its return", i, c)
		}
	}
}
