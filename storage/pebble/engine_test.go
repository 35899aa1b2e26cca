package pebble

import (
	"testing"

	"github.com/pembadb/pemba/storage"
	"github.com/pembadb/pemba/storage/storagetest"
)

func openTest(t testing.TB, opts Options) *Engine {
	t.Helper()
	if opts.GCInterval == 0 {
		opts.GCInterval = -1 // tests collect garbage explicitly
	}
	e, err := Open(opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return e
}

func TestConformanceOnDisk(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Engine {
		return openTest(t, Options{Dir: t.TempDir()})
	})
}

func TestConformanceInMemory(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Engine {
		return openTest(t, Options{InMemory: true})
	})
}
