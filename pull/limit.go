package pull

import (
	"context"
	"sync"
)

// limiter is a FIFO counting semaphore whose size can change while it is
// used: a lowered limit holds back new acquisitions until enough holders
// release, a raised one admits waiters at once.
type limiter struct {
	mu      sync.Mutex
	limit   int
	inUse   int
	waiters []*ticket
}

// ticket is a place in a limiter's queue. Downloads take theirs when a
// pull asks for them, in manifest order, rather than when their goroutines
// get to run: the scheduler starts those in no useful order, and the first
// layer, usually the largest and the last to finish extracting, must not
// wait behind the others.
type ticket struct {
	l       *limiter
	granted chan struct{} // closed when the slot is ours
	queued  bool          // had to queue when reserved
	done    bool          // released
}

func newLimiter(n int) *limiter { return &limiter{limit: max(n, 1)} }

// Reserve takes a place in the queue (or a free slot at once).
func (l *limiter) Reserve() *ticket {
	t := &ticket{l: l, granted: make(chan struct{})}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inUse < l.limit && len(l.waiters) == 0 {
		l.inUse++
		close(t.granted)
		return t
	}
	t.queued = true
	l.waiters = append(l.waiters, t)
	return t
}

// Wait blocks until the ticket's slot is free, calling onWait first when
// the ticket had to queue. When ctx ends first, the place is given up.
func (t *ticket) Wait(ctx context.Context, onWait func()) error {
	if t.queued && onWait != nil {
		select {
		case <-t.granted:
		default:
			onWait()
		}
	}
	select {
	case <-t.granted:
		return nil
	case <-ctx.Done():
		t.Release()
		return ctx.Err()
	}
}

// Release gives up the place in the queue, or the slot once it is granted.
// Calls after the first do nothing.
func (t *ticket) Release() {
	l := t.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if t.done {
		return
	}
	t.done = true
	select {
	case <-t.granted:
		l.inUse--
		l.grantLocked()
	default:
		for i, w := range l.waiters {
			if w == t {
				l.waiters = append(l.waiters[:i], l.waiters[i+1:]...)
				break
			}
		}
	}
}

// Acquire takes a slot, calling onWait first when it has to queue.
func (l *limiter) Acquire(ctx context.Context, onWait func()) error {
	return l.Reserve().Wait(ctx, onWait)
}

// Release gives a slot back.
func (l *limiter) Release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inUse--
	l.grantLocked()
}

// SetLimit changes the size.
func (l *limiter) SetLimit(n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.limit = max(n, 1)
	l.grantLocked()
}

func (l *limiter) grantLocked() {
	for l.inUse < l.limit && len(l.waiters) > 0 {
		t := l.waiters[0]
		l.waiters = l.waiters[1:]
		l.inUse++
		close(t.granted)
	}
}
