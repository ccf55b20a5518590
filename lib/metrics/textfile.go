package metrics

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TextfileMode is the permission of the files WriteTextfile writes: not
// world-readable, like every file auditpipe creates. node_exporter must
// run in the file's group: make the textfile directory setgid and owned by
// node_exporter's group (chgrp node_exporter DIR; chmod 2750 DIR) so that
// new files inherit that group.
const TextfileMode = 0o640

// WriteTextfile writes the Set's metrics to path in the text format of
// node_exporter's textfile collector (--collector.textfile.directory; the
// name must end in .prom for node_exporter to read it).
//
// The write is atomic: the metrics go to a temporary file in the same
// directory (a dot file not ending in .prom, so node_exporter never reads
// it), which is fsynced and renamed over path. A reader sees the old file
// or the new one, never a partial one.
//
// What differs from Serve:
//   - Only the Set's own metrics are written, not the process and Go
//     collectors: node_exporter exports its own go_ and process_ metrics,
//     and the same family from a textfile would clash with them.
//   - Every series gets the label binary="<binary given to New>".
//     node_exporter merges all textfiles into one scrape target, so the
//     job and instance labels that tell processes apart over HTTP are the
//     same for all of them, and the stages of one pipeline, each counting
//     declaragent_audit_backpressure_paused_total, would otherwise write
//     the same series and node_exporter would drop all but one.
//   - No timestamps (node_exporter rejects a textfile that has any).
//     node_exporter's node_textfile_mtime_seconds{file} tells when a file
//     was last written: alert on it to catch a cron job that stopped.
func (s *Set) WriteTextfile(path string) error {
	mfs, err := s.Registry.Gather()
	if err != nil {
		return fmt.Errorf("gather metrics: %w", err)
	}
	s.mu.Lock()
	mfs = slices.DeleteFunc(mfs, func(mf *dto.MetricFamily) bool {
		_, own := s.made[mf.GetName()]
		return !own
	})
	s.mu.Unlock()
	if s.binary != "" {
		for _, mf := range mfs {
			for _, m := range mf.Metric {
				m.Label = append(m.Label, &dto.LabelPair{Name: strPtr(LabelBinary), Value: strPtr(labelValue(s.binary))})
				slices.SortFunc(m.Label, func(a, b *dto.LabelPair) int {
					return strings.Compare(a.GetName(), b.GetName())
				})
			}
		}
	}
	if err := writeAtomic(path, TextfileMode, func(f *os.File) error {
		w := bufio.NewWriter(f)
		// Text format 0.0.4, which node_exporter parses, with any name
		// outside the legacy character set escaped rather than emitted.
		enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain).WithEscapingScheme(model.UnderscoreEscaping))
		for _, mf := range mfs {
			if err := enc.Encode(mf); err != nil {
				return err
			}
		}
		return w.Flush()
	}); err != nil {
		return fmt.Errorf("write metrics textfile: %w", err)
	}
	return nil
}

// TextfileLoop writes the textfile at once, then every interval (if every
// is positive) and once more when ctx ends, and returns that last write's
// error; errors of earlier writes go to ErrorLog. So that the last write
// has the final counts, end ctx after the stage's work is done (not with
// the signal context that stops the work), and wait for TextfileLoop to
// return before exiting.
func (s *Set) TextfileLoop(ctx context.Context, path string, every time.Duration) error {
	s.logErr(s.WriteTextfile(path))
	var tick <-chan time.Time
	if every > 0 {
		t := time.NewTicker(every)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return s.WriteTextfile(path)
		case <-tick:
			s.logErr(s.WriteTextfile(path))
		}
	}
}

func (s *Set) logErr(err error) {
	if err != nil && s.ErrorLog != nil {
		s.ErrorLog.Print(err)
	}
}

// writeAtomic writes path through a temporary file in the same directory:
// write, fsync, chmod, rename, fsync the directory.
func writeAtomic(path string, mode os.FileMode, write func(*os.File) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	// Chmod, not the umask-filtered mode of open: the result is exactly mode.
	if err = f.Chmod(mode); err != nil {
		return err
	}
	if err = write(f); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	// Make the rename itself durable; best effort (not every platform
	// or file system can sync a directory), as the file is already safe.
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

func strPtr(s string) *string { return &s }
