package chain

import "sync"

// fsSyncer coalesces flushes of the layers filesystem. syncfs flushes the
// whole filesystem, so concurrent layers that finish applying together need
// one flush that starts after the last of them, not one each.
type fsSyncer struct {
	mu      sync.Mutex
	idle    *sync.Cond
	running bool
	pending *syncRun
}

type syncRun struct {
	done chan struct{}
	err  error
}

func newFSSyncer() *fsSyncer {
	y := &fsSyncer{}
	y.idle = sync.NewCond(&y.mu)
	return y
}

// sync returns once a flush that started after this call has finished.
// The caller that creates the pending run leads it: it waits for the flush
// in progress (which may have started before its data was written) and
// then runs flush for everyone who joined meanwhile.
func (y *fsSyncer) sync(flush func() error) error {
	y.mu.Lock()
	if r := y.pending; r != nil {
		y.mu.Unlock()
		<-r.done
		return r.err
	}
	r := &syncRun{done: make(chan struct{})}
	y.pending = r
	for y.running {
		y.idle.Wait()
	}
	y.pending, y.running = nil, true
	y.mu.Unlock()

	r.err = flush()

	y.mu.Lock()
	y.running = false
	y.idle.Broadcast()
	y.mu.Unlock()
	close(r.done)
	return r.err
}
