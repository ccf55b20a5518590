package witness

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Witness is a configured witness: its key and where to reach it.
type Witness struct {
	*Verifier
	// URL is the submission prefix: add-checkpoint is POSTed to
	// URL + "/add-checkpoint". Empty for a witness known only by its key
	// (verification needs no URL).
	URL string
}

// ParseWitness parses a witness given as VKEY=URL (the form of seal's
// --witness flag and of a witness file line) or as VKEY alone. A vkey holds
// no '=' after its name, so the URL starts after the first "=http" that
// follows the key.
func ParseWitness(s string) (Witness, error) {
	s = strings.TrimSpace(s)
	key, url := s, ""
	if i := strings.Index(s, "=http"); i >= 0 {
		key, url = s[:i], s[i+1:]
	}
	v, err := NewVerifier(key)
	if err != nil {
		return Witness{}, err
	}
	if url != "" && !strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://") {
		return Witness{}, fmt.Errorf("witness %s: URL %q is not http:// or https://", v.Name(), url)
	}
	return Witness{Verifier: v, URL: strings.TrimSuffix(url, "/")}, nil
}

// ReadWitnessFile reads a witness file: one witness a line, VKEY=URL or
// VKEY; blank lines and lines starting with '#' are skipped.
func ReadWitnessFile(path string) ([]Witness, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var ws []Witness
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		w, err := ParseWitness(line)
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %w", path, i+1, err)
		}
		ws = append(ws, w)
	}
	return ws, nil
}

// The witness's refusals: answers that retrying will not change. Test with
// errors.Is / errors.As.
var (
	// ErrUnknownLog: 404, the witness does not know this log's origin.
	ErrUnknownLog = errors.New("the witness does not know this log (404)")
	// ErrForbidden: 403, the witness does not trust the log's key.
	ErrForbidden = errors.New("the witness does not accept the log's signature (403)")
	// ErrProofRejected: 422, the consistency proof does not verify against
	// the checkpoint the witness holds: the witness saw another tree.
	ErrProofRejected = errors.New("the witness rejected the consistency proof (422): it holds another tree at that size")
	// ErrBadRequest: 400, the request was not in form (or the old size is
	// larger than the checkpoint's).
	ErrBadRequest = errors.New("the witness rejected the request (400)")
)

// ConflictError is a 409 Conflict: the old size sent is not the size of the
// newest checkpoint the witness cosigned (Size, if the witness said), or
// the checkpoint has that size and another root.
type ConflictError struct {
	Size    int64 // the witness's size
	HasSize bool  // the answer carried a size (text/x.tlog.size)
	Sent    int64 // the old size that was sent
}

func (e *ConflictError) Error() string {
	if !e.HasSize {
		return fmt.Sprintf("the witness answered 409 Conflict to old size %d without a size", e.Sent)
	}
	return fmt.Sprintf("the witness answered 409 Conflict: it holds size %d, not the old size %d sent", e.Size, e.Sent)
}

// TransientError is a failure that a retry may cure: the witness could not
// be reached, timed out, or answered 5xx or 429.
type TransientError struct{ Err error }

func (e *TransientError) Error() string { return e.Err.Error() }
func (e *TransientError) Unwrap() error { return e.Err }

// Client submits checkpoints to witnesses.
type Client struct {
	// HTTP is the client (default: one with a 30 s timeout).
	HTTP *http.Client
	// UserAgent is sent with each request.
	UserAgent string
}

const maxResponse = 64 << 10

// AddCheckpoint sends the signed checkpoint msg to w with the witness's old
// size and a consistency proof from it to the checkpoint's size, and
// returns the cosignature lines of w (each "— name base64\n"), verified
// against w's key over msg's text. Lines by other keys are dropped.
//
// Errors: *TransientError (retry later), *ConflictError (409), and wrapped
// ErrUnknownLog, ErrForbidden, ErrProofRejected, ErrBadRequest or
// ErrBadCosignature (a 200 whose body is no valid cosignature of msg by w).
func (c *Client) AddCheckpoint(ctx context.Context, w Witness, oldSize int64, proof tlog.TreeProof, msg []byte) ([]byte, error) {
	if w.URL == "" {
		return nil, fmt.Errorf("witness %s: no URL", w.Name())
	}
	var body bytes.Buffer
	fmt.Fprintf(&body, "old %d\n", oldSize)
	for _, h := range proof {
		fmt.Fprintf(&body, "%s\n", h)
	}
	body.WriteByte('\n')
	body.Write(msg)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL+"/add-checkpoint", &body)
	if err != nil {
		return nil, err
	}
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, &TransientError{fmt.Errorf("witness %s: %w", w.Name(), err)}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return nil, &TransientError{fmt.Errorf("witness %s: reading the answer: %w", w.Name(), err)}
	}
	text := strings.TrimSpace(string(data))
	if len(text) > 200 {
		text = text[:200] + "…"
	}
	switch {
	case resp.StatusCode == http.StatusOK:
	case resp.StatusCode == http.StatusConflict:
		ce := &ConflictError{Sent: oldSize}
		if n, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64); err == nil && n >= 0 {
			ce.Size, ce.HasSize = n, true
		}
		return nil, ce
	case resp.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("witness %s: %w: %s", w.Name(), ErrUnknownLog, text)
	case resp.StatusCode == http.StatusForbidden:
		return nil, fmt.Errorf("witness %s: %w: %s", w.Name(), ErrForbidden, text)
	case resp.StatusCode == http.StatusUnprocessableEntity:
		return nil, fmt.Errorf("witness %s: %w: %s", w.Name(), ErrProofRejected, text)
	case resp.StatusCode == http.StatusBadRequest:
		return nil, fmt.Errorf("witness %s: %w: %s", w.Name(), ErrBadRequest, text)
	default:
		return nil, &TransientError{fmt.Errorf("witness %s: HTTP %s: %s", w.Name(), resp.Status, text)}
	}
	// Keep the lines by w's key; each must verify.
	var keep []byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		if !strings.HasPrefix(line, "— ") {
			return nil, fmt.Errorf("witness %s: %w: the answer line %q is not a signature line", w.Name(), ErrBadCosignature, clip(line))
		}
		name, _, _ := strings.Cut(strings.TrimPrefix(line, "— "), " ")
		if name != w.Name() {
			continue
		}
		keep = append(keep, line...)
		keep = append(keep, '\n')
	}
	if len(keep) == 0 {
		return nil, fmt.Errorf("witness %s: %w: the answer holds no cosignature by %s", w.Name(), ErrBadCosignature, w.Name())
	}
	cosigned := AddCosignatures(msg, keep)
	cs, err := Cosignatures(cosigned, note.VerifierList(w.Verifier))
	if err != nil {
		return nil, fmt.Errorf("witness %s: %w", w.Name(), err)
	}
	if len(cs) == 0 {
		return nil, fmt.Errorf("witness %s: %w: the answer holds no cosignature with key ID %08x", w.Name(), ErrBadCosignature, w.KeyHash())
	}
	return keep, nil
}
