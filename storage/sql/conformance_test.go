package sql

import (
	"testing"

	"github.com/pembadb/pemba/storage"
	"github.com/pembadb/pemba/storage/storagetest"
)

func TestConformancePostgreSQL(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Engine { return openTest(t) })
}
