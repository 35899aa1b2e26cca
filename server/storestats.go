package server

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pembadb/pemba/storage"
)

// storeStatser is an engine that reports how it keeps its data (the
// embedded engine does; SQL engines leave that to their database).
type storeStatser interface {
	StoreStats() storage.StoreStats
}

// storeCollector exports an engine's StoreStats, read once per scrape.
type storeCollector struct {
	engine                          storeStatser
	cacheBytes, cacheHits, cacheMis *prometheus.Desc
	readAmp, debt                   *prometheus.Desc
	levelBytes, levelTables         *prometheus.Desc
}

func newStoreCollector(e storeStatser) *storeCollector {
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &storeCollector{
		engine:      e,
		cacheBytes:  desc("pemba_store_block_cache_bytes", "Memory held by the embedded store's block cache (bounded by --block-cache-bytes)."),
		cacheHits:   desc("pemba_store_block_cache_hits_total", "Block reads the embedded store answered from its block cache."),
		cacheMis:    desc("pemba_store_block_cache_misses_total", "Block reads the embedded store made from its files (read and decompressed)."),
		readAmp:     desc("pemba_store_read_amplification", "Sorted runs (levels and level-0 sublevels) a read of the embedded store may consult."),
		debt:        desc("pemba_store_compaction_debt_bytes", "Bytes the embedded store's compactions must still rewrite to settle."),
		levelBytes:  desc("pemba_store_level_bytes", "Size of the embedded store's table files by LSM level.", "level"),
		levelTables: desc("pemba_store_level_tables", "Table files of the embedded store by LSM level.", "level"),
	}
}

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.cacheBytes, c.cacheHits, c.cacheMis, c.readAmp, c.debt, c.levelBytes, c.levelTables} {
		ch <- d
	}
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.engine.StoreStats()
	ch <- prometheus.MustNewConstMetric(c.cacheBytes, prometheus.GaugeValue, float64(st.BlockCacheBytes))
	ch <- prometheus.MustNewConstMetric(c.cacheHits, prometheus.CounterValue, float64(st.BlockCacheHits))
	ch <- prometheus.MustNewConstMetric(c.cacheMis, prometheus.CounterValue, float64(st.BlockCacheMisses))
	ch <- prometheus.MustNewConstMetric(c.readAmp, prometheus.GaugeValue, float64(st.ReadAmplification))
	ch <- prometheus.MustNewConstMetric(c.debt, prometheus.GaugeValue, float64(st.CompactionDebtBytes))
	for i := range st.LevelBytes {
		level := strconv.Itoa(i)
		ch <- prometheus.MustNewConstMetric(c.levelBytes, prometheus.GaugeValue, float64(st.LevelBytes[i]), level)
		ch <- prometheus.MustNewConstMetric(c.levelTables, prometheus.GaugeValue, float64(st.LevelTables[i]), level)
	}
}
