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
	waiters []chan struct{}
}

func newLimiter(n int) *limiter { return &limiter{limit: max(n, 1)} }

// Acquire takes a slot, calling onWait first when it has to queue.
func (l *limiter) Acquire(ctx context.Context, onWait func()) error {
	l.mu.Lock()
	if l.inUse < l.limit && len(l.waiters) == 0 {
		l.inUse++
		l.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	l.waiters = append(l.waiters, ch)
	l.mu.Unlock()
	if onWait != nil {
		onWait()
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		l.mu.Lock()
		defer l.mu.Unlock()
		select {
		case <-ch:
			// Granted while we gave up: hand the slot on.
			l.inUse--
			l.grantLocked()
		default:
			for i, w := range l.waiters {
				if w == ch {
					l.waiters = append(l.waiters[:i], l.waiters[i+1:]...)
					break
				}
			}
		}
		return ctx.Err()
	}
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
		ch := l.waiters[0]
		l.waiters = l.waiters[1:]
		l.inUse++
		close(ch)
	}
}
