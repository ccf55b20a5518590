// Package witnessfake is a C2SP tlog-witness protocol fake for tests: a
// witness that answers add-checkpoint as the protocol says (404, 403, 400,
// 409 with text/x.tlog.size, 422, 200 with a cosignature/v1 line), plus the
// answers a real witness will not give on demand: down (503 or connection
// refused), slow, rolled back to an older checkpoint, and a corrupted
// cosignature. It listens on 127.0.0.1 only.
package witnessfake

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/auditpipe/auditpipe/lib/witness"
)

// Witness is a running fake witness.
type Witness struct {
	Name string
	VKey string // its cosignature/v1 vkey
	URL  string // its submission prefix

	srv    *httptest.Server
	signer *witness.Signer

	mu      sync.Mutex
	logs    map[string]*logState // by origin
	down    bool
	delay   time.Duration
	corrupt bool
	history map[string][]logState // every state, to roll back to
	calls   int
	stop    chan struct{}
}

type logState struct {
	verifiers note.Verifiers
	size      int64
	root      tlog.Hash
}

// Start starts a fake witness named name; stop it with Close.
func Start(name string) (*Witness, error) {
	s, vkey, err := witness.GenerateSigner(name, rand.Reader)
	if err != nil {
		return nil, err
	}
	w := &Witness{Name: name, VKey: vkey, signer: s, logs: map[string]*logState{}, history: map[string][]logState{}, stop: make(chan struct{})}
	w.srv = httptest.NewServer(http.HandlerFunc(w.serve))
	w.URL = w.srv.URL
	return w, nil
}

// Close stops the witness (a delayed answer is abandoned).
func (w *Witness) Close() {
	close(w.stop)
	w.srv.Close()
}

// AddLog makes the witness know the log origin with the log's verifier key
// vkey (a note key, as checkpoint.GenerateKey makes), at size 0.
func (w *Witness) AddLog(origin, vkey string) error {
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.logs[origin] = &logState{verifiers: note.VerifierList(v), root: tlog.Hash{}}
	return nil
}

// SetDown makes every request fail with 503 (true) or be served (false).
func (w *Witness) SetDown(down bool) { w.mu.Lock(); w.down = down; w.mu.Unlock() }

// SetDelay delays every answer by d.
func (w *Witness) SetDelay(d time.Duration) { w.mu.Lock(); w.delay = d; w.mu.Unlock() }

// SetCorrupt flips one byte of the signature in every cosignature returned.
func (w *Witness) SetCorrupt(c bool) { w.mu.Lock(); w.corrupt = c; w.mu.Unlock() }

// RollBack makes the witness forget its newest n cosigned checkpoints of
// origin, as a witness restored from an old backup would.
func (w *Witness) RollBack(origin string, n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	h := w.history[origin]
	if n > len(h) {
		n = len(h)
	}
	h = h[:len(h)-n]
	w.history[origin] = h
	l := w.logs[origin]
	if len(h) == 0 {
		l.size, l.root = 0, tlog.Hash{}
		return
	}
	l.size, l.root = h[len(h)-1].size, h[len(h)-1].root
}

// Size returns the size of the newest checkpoint of origin the witness cosigned.
func (w *Witness) Size(origin string) int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	if l := w.logs[origin]; l != nil {
		return l.size
	}
	return -1
}

// Calls returns how many add-checkpoint requests arrived.
func (w *Witness) Calls() int { w.mu.Lock(); defer w.mu.Unlock(); return w.calls }

func (w *Witness) serve(rw http.ResponseWriter, r *http.Request) {
	w.mu.Lock()
	w.calls++
	down, delay := w.down, w.delay
	w.mu.Unlock()
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		case <-w.stop:
			return
		}
	}
	if down {
		http.Error(rw, "witness down", http.StatusServiceUnavailable)
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/add-checkpoint" {
		http.Error(rw, "not found", http.StatusNotFound)
		return
	}
	if err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	code, msg := w.add(body)
	if code == http.StatusConflict && msg != "" && !strings.HasPrefix(msg, "—") {
		rw.Header().Set("Content-Type", "text/x.tlog.size")
	}
	rw.WriteHeader(code)
	io.WriteString(rw, msg)
}

func (w *Witness) add(body []byte) (int, string) {
	br := bufio.NewReader(bytes.NewReader(body))
	first, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(first, "old ") {
		return http.StatusBadRequest, "no old size line\n"
	}
	old, err := strconv.ParseInt(strings.TrimSuffix(first[4:], "\n"), 10, 64)
	if err != nil || old < 0 {
		return http.StatusBadRequest, "bad old size\n"
	}
	var proof tlog.TreeProof
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return http.StatusBadRequest, "no empty line\n"
		}
		if line == "\n" {
			break
		}
		h, err := tlog.ParseHash(strings.TrimSuffix(line, "\n"))
		if err != nil || len(proof) == 63 {
			return http.StatusBadRequest, "bad proof line\n"
		}
		proof = append(proof, h)
	}
	msg, _ := io.ReadAll(br)
	origin, _, _ := strings.Cut(string(msg), "\n")
	w.mu.Lock()
	defer w.mu.Unlock()
	l := w.logs[origin]
	if l == nil {
		return http.StatusNotFound, "unknown log\n"
	}
	n, err := note.Open(msg, l.verifiers)
	if err != nil {
		return http.StatusForbidden, "no valid signature by the log's key\n"
	}
	lines := strings.Split(n.Text, "\n")
	if len(lines) < 4 {
		return http.StatusBadRequest, "not a checkpoint\n"
	}
	size, err1 := strconv.ParseInt(lines[1], 10, 64)
	root, err2 := tlog.ParseHash(lines[2])
	if err1 != nil || err2 != nil {
		return http.StatusBadRequest, "not a checkpoint\n"
	}
	if old > size {
		return http.StatusBadRequest, "old size is larger than the checkpoint's\n"
	}
	if old != l.size {
		return http.StatusConflict, fmt.Sprintf("%d\n", l.size)
	}
	if old == size {
		if root != l.root {
			return http.StatusConflict, fmt.Sprintf("%d\n", l.size)
		}
	} else if old > 0 {
		if err := tlog.CheckTree(proof, size, root, old, l.root); err != nil {
			return http.StatusUnprocessableEntity, "the consistency proof does not verify\n"
		}
	} else if len(proof) > 0 {
		return http.StatusBadRequest, "a proof from size 0\n"
	}
	l.size, l.root = size, root
	w.history[origin] = append(w.history[origin], logState{size: size, root: root})
	line, err := w.signer.CosignLine([]byte(n.Text))
	if err != nil {
		return http.StatusInternalServerError, err.Error()
	}
	if w.corrupt {
		line = flipSigByte(line)
	}
	return http.StatusOK, string(line)
}

// flipSigByte flips one bit in the Ed25519 signature of a signature line.
func flipSigByte(line []byte) []byte {
	s := strings.TrimSuffix(string(line), "\n")
	i := strings.LastIndexByte(s, ' ')
	raw, err := base64.StdEncoding.DecodeString(s[i+1:])
	if err != nil {
		return line
	}
	raw[len(raw)-1] ^= 1
	return []byte(s[:i+1] + base64.StdEncoding.EncodeToString(raw) + "\n")
}
