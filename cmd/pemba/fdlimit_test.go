package main

import (
	"strings"
	"testing"
)

func TestConnectionLimit(t *testing.T) {
	for _, c := range []struct {
		requested, listeners int
		nofile               uint64
		want                 int
		wantErr              string
	}{
		{0, 2, 1 << 20, defaultMaxConnections, ""},
		{0, 2, 20000, defaultMaxConnections, ""},
		{0, 2, 4096, (4096 - reservedDescriptors) / 2, ""},
		{0, 3, 2048, (2048 - reservedDescriptors) / 3, ""},
		{0, 2, 1024, 0, "raise the limit"},
		{0, 2, 1100, 0, "fewer than 64 connections"},
		{500, 2, 2048, 500, ""},
		{513, 2, 2048, 0, "lower --max-connections to at most 512"},
		{-1, 2, 2048, 0, "negative"},
	} {
		got, err := connectionLimit(c.requested, c.listeners, c.nofile)
		switch {
		case c.wantErr == "" && (err != nil || got != c.want):
			t.Errorf("connectionLimit(%d, %d, %d) = %d, %v; want %d", c.requested, c.listeners, c.nofile, got, err, c.want)
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("connectionLimit(%d, %d, %d) = %d, %v; want an error containing %q", c.requested, c.listeners, c.nofile, got, err, c.wantErr)
		}
	}
}
