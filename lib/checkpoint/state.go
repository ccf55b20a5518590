package checkpoint

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/mod/sumdb/note"
)

// maxStateFile bounds a state file.
const maxStateFile = 1 << 20

// State is the trusted state of a verifier: the newest checkpoint it has
// verified against the log, kept between runs. It is stored as one JSON
// object:
//
//	{"origin":"example.com/log","size":1000,"root":"<base64>","note":"<signed note>"}
//
// Note is the whole signed note, so the state can be re-verified (State.Open)
// and shown to others; Origin, Size and Root repeat its body for people and
// tools reading the file.
type State struct {
	Origin string `json:"origin"`
	Size   int64  `json:"size"`
	Root   string `json:"root"` // standard base64, as in the note
	Note   string `json:"note"`
}

// StateOf returns the State of a checkpoint returned by Open.
func StateOf(cp Checkpoint) State {
	return State{Origin: cp.Origin, Size: cp.Size, Root: cp.Root.String(), Note: string(cp.Note)}
}

// Open verifies the state's note as Open does and checks that the state's
// fields agree with it (ErrMalformed if not).
func (s State) Open(verifiers note.Verifiers) (Checkpoint, error) {
	cp, err := Open([]byte(s.Note), verifiers)
	if err != nil {
		return Checkpoint{}, err
	}
	if cp.Origin != s.Origin || cp.Size != s.Size || cp.Root.String() != s.Root {
		return Checkpoint{}, fmt.Errorf("open state: %w: origin, size or root (%q, %d, %s) disagree with the signed note (%q, %d, %s)",
			ErrMalformed, s.Origin, s.Size, s.Root, cp.Origin, cp.Size, cp.Root)
	}
	return cp, nil
}

// ReadState reads a state file written by WriteState. A missing file is an
// error that satisfies errors.Is(err, fs.ErrNotExist): the caller decides
// whether that means a first run. ReadState does not verify the note; the
// Checker does (or call State.Open).
func ReadState(path string) (State, error) {
	f, err := os.Open(path)
	if err != nil {
		return State{}, fmt.Errorf("read state: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxStateFile+1))
	if err != nil {
		return State{}, fmt.Errorf("read state: %w", err)
	}
	if len(data) > maxStateFile {
		return State{}, fmt.Errorf("read state: %s: %w: larger than %d bytes", path, ErrMalformed, maxStateFile)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var s State
	if err := dec.Decode(&s); err != nil {
		return State{}, fmt.Errorf("read state: %s: %w: %v", path, ErrMalformed, err)
	}
	if rest := bytes.TrimSpace(data[dec.InputOffset():]); len(rest) != 0 {
		return State{}, fmt.Errorf("read state: %s: %w: data after the JSON object", path, ErrMalformed)
	}
	if s.Origin == "" || s.Note == "" || s.Size < 0 {
		return State{}, fmt.Errorf("read state: %s: %w: origin, size, root and note are required", path, ErrMalformed)
	}
	if _, err := parseHash(s.Root); err != nil {
		return State{}, fmt.Errorf("read state: %s: %w: root: %v", path, ErrMalformed, err)
	}
	return s, nil
}

// WriteState writes s to path atomically: to a temporary file in the same
// directory (mode 0600), fsynced, renamed over path, and the directory
// fsynced, so that a crash leaves either the old state or the new one.
func WriteState(path string, s State) (err error) {
	data, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	data = append(data, '\n')
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		serr := d.Sync()
		d.Close()
		if serr != nil {
			return fmt.Errorf("write state: sync %s: %w", dir, serr)
		}
	}
	return nil
}
