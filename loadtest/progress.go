package loadtest

import (
	"io"
	"time"

	"github.com/schollz/progressbar/v3"
)

// bar is a progress bar, or nothing when progress is not wanted.
type bar struct{ pb *progressbar.ProgressBar }

// newBar starts a bar of max steps on w; a nil w gives a bar that draws
// nothing.
func newBar(w io.Writer, max int64, description string) bar {
	if w == nil {
		return bar{}
	}
	return bar{pb: progressbar.NewOptions64(max,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(description),
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionOnCompletion(func() { _, _ = io.WriteString(w, "\n") }),
	)}
}

func (b bar) Add(n int) {
	if b.pb != nil {
		_ = b.pb.Add(n)
	}
}

func (b bar) Set(n int) {
	if b.pb != nil {
		_ = b.pb.Set(n)
	}
}

func (b bar) Describe(s string) {
	if b.pb != nil {
		b.pb.Describe(s)
	}
}

func (b bar) Finish() {
	if b.pb != nil {
		_ = b.pb.Finish()
	}
}
