package policy

import (
	"context"
	"os"
	"slices"
	"time"
)

// pollEvery is how often Watch looks at the files. Polling sees every way a
// file can be replaced (written in place, renamed over, re-created, a
// ConfigMap symlink flip) and costs two stat calls per tick.
var pollEvery = time.Second

// stamp is what Watch compares to notice a change.
type stamp struct {
	mod  time.Time
	size int64
	ok   bool
}

func stampOf(path string) stamp {
	fi, err := os.Stat(path)
	if err != nil {
		return stamp{}
	}
	return stamp{mod: fi.ModTime(), size: fi.Size(), ok: true}
}

// watch calls changed when any of files changes from the stamps it was last
// loaded with, until ctx ends. A change is
// acted on once the files have stayed the same for one more tick, so that a
// file caught half-written is not read.
func watch(ctx context.Context, files []string, loaded []stamp, changed func()) {
	last := slices.Clone(loaded)
	pending := false
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		moved := false
		for i, f := range files {
			if s := stampOf(f); s != last[i] {
				last[i] = s
				moved = true
			}
		}
		switch {
		case moved:
			pending = true
		case pending:
			pending = false
			changed()
		}
	}
}
