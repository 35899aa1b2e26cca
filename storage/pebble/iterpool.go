package pebble

import (
	"slices"
	"sync"
	"time"

	pdb "github.com/cockroachdb/pebble/v2"

	"github.com/pembadb/pemba/storage"
)

// Opening a Pebble iterator (taking a read state, one level iterator per
// level, the tables' index blocks) and closing it costs more than the seek
// of a point query, and an Expand or a LookupResources issues hundreds of
// point queries. Queries therefore borrow recently opened iterators from a
// small pool and reposition them with SetBounds.
//
// An iterator is a view of the store as of its opening. It serves a query
// at rev only if rev was durable then (rev <= the head read before it was
// opened): the versions up to rev were applied before the view was taken.
// The caller still checks the GC floor after borrowing; since the floor
// only rises, a floor at or below rev now was at or below it when the view
// was taken, so the view holds every version rev needs. A view pins the
// memtables and tables it saw, so an iterator older than iterMaxAge is
// closed instead of reused, and a timer closes idle ones.
const (
	iterMaxAge  = 200 * time.Millisecond
	iterPoolMax = 16
)

// pooledIter is an open iterator with the head it can read up to and when
// it was opened.
type pooledIter struct {
	it     *pdb.Iterator
	head   storage.Revision
	opened time.Time
}

// iterPool holds idle iterators. Iterators are closed only while mu is
// held, so close (called before the store closes) leaves none behind.
type iterPool struct {
	mu     sync.Mutex
	idle   []pooledIter
	timer  *time.Timer // armed while idle iterators wait to be swept
	closed bool
}

// openIter borrows an iterator that can read rev, or opens one.
func (e *Engine) openIter(rev storage.Revision, lo, hi []byte) (pooledIter, error) {
	if pi, ok := e.iters.get(rev); ok {
		pi.it.SetBounds(lo, hi)
		return pi, nil
	}
	head := storage.Revision(e.head.Load())
	opened := time.Now()
	it, err := e.db.NewIter(&pdb.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return pooledIter{}, err
	}
	return pooledIter{it: it, head: head, opened: opened}, nil
}

// get takes the newest idle iterator that can read rev.
func (p *iterPool) get(rev storage.Revision) (pooledIter, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.idle) - 1; i >= 0; i-- {
		pi := p.idle[i]
		if rev <= pi.head && time.Since(pi.opened) < iterMaxAge {
			p.idle = slices.Delete(p.idle, i, i+1)
			return pi, true
		}
	}
	return pooledIter{}, false
}

// put returns an iterator to the pool, or closes it when it is too old,
// the pool is full (closing the oldest) or closed.
func (p *iterPool) put(pi pooledIter) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || time.Since(pi.opened) >= iterMaxAge {
		pi.it.Close()
		return
	}
	if len(p.idle) == iterPoolMax {
		p.idle[0].it.Close()
		p.idle = slices.Delete(p.idle, 0, 1)
	}
	p.idle = append(p.idle, pi)
	if p.timer == nil {
		p.timer = time.AfterFunc(iterMaxAge, p.sweep)
	}
}

// sweep closes the iterators that have grown too old, and rearms itself
// while any remain.
func (p *iterPool) sweep() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.timer = nil
	if p.closed {
		return
	}
	kept := p.idle[:0]
	for _, pi := range p.idle {
		if time.Since(pi.opened) >= iterMaxAge {
			pi.it.Close()
			continue
		}
		kept = append(kept, pi)
	}
	clear(p.idle[len(kept):])
	p.idle = kept
	if len(p.idle) > 0 {
		p.timer = time.AfterFunc(iterMaxAge, p.sweep)
	}
}

// close closes every idle iterator; later puts close theirs at once.
func (p *iterPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
	for _, pi := range p.idle {
		pi.it.Close()
	}
	p.idle = nil
}
