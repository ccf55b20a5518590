// Package auditcursor is audit-cursor: list, show, move back and delete the
// exporters' cursors in an audit database. The man page is
// cmd/audit-cursor/doc.go.
package auditcursor

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/auditpipe/auditpipe/lib/auditdb"
	"github.com/auditpipe/auditpipe/lib/cli"
	"github.com/auditpipe/auditpipe/lib/exitcode"
)

const prog = "audit-cursor"

const usage = `usage: audit-cursor COMMAND --db PATH [flags] [NAME]

The exporters' cursors in an audit database: the last record shipped to each
exporter (audit_export_cursor.last_seq, and the hash of that record).

Commands:
  list     every cursor: name, last seq, its hash, when it last moved, lag to the head
  show     one cursor (NAME)
  create   create a cursor at seq 0, for a new exporter: its first run ships the whole log
  move     move a cursor back to --to-seq (records after it are shipped again)
  delete   delete a cursor (its exporter starts again at the beginning of the log)

Flags of every command: --db PATH (required), --json (machine-readable output),
--busy-timeout D; move also: --to-seq N (required), --hash HEX, --skip-records.
Flags and NAME may come in any order. Each flag is also settable as
AUDIT_CURSOR_<FLAG> (dashes as underscores). "audit-cursor COMMAND -h" prints
a command's flags.

Examples:
  audit-cursor list --db /var/lib/declaragent/audit.db
  audit-cursor show --db audit.db splunk:prod --json
  audit-cursor create --db audit.db elastic:prod
  audit-cursor move --db audit.db splunk:prod --to-seq 41999 --hash 3ec9b08c...   # ship 42000.. again
  audit-cursor delete --db audit.db splunk:old

Stop the pipeline of an exporter (its audit-ack) before moving its cursor:
a running audit-ack moves it forward again at its next commit.
`

// Main is the entry point of the audit-cursor binary.
func Main() int { return cli.Main(prog, Run) }

type config struct {
	db      string
	json    bool
	busy    time.Duration
	toSeq   int64
	hash    string
	skip    bool
	name    string
	command string
}

// Run is audit-cursor with its I/O passed in: args[0] is the command.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintf(stderr, "%s\n%s", usage, exitcode.Table)
		return cli.Usagef("no command given (list, show, create, move or delete)")
	}
	cmd := args[0]
	switch cmd {
	case "-h", "-help", "--help", "help":
		fmt.Fprintf(stderr, "%s\n%s", usage, exitcode.Table)
		return flag.ErrHelp
	case "list", "show", "create", "move", "delete":
	default:
		const want = "list, show, create, move or delete"
		if s := auditdb.Suggest(cmd, []string{"list", "show", "create", "move", "delete"}); s != "" && len(cmd) > 1 {
			return cli.Usagef("unknown command %q: did you mean %q? (want %s; -h for help)", cmd, s, want)
		}
		return cli.Usagef("unknown command %q (want %s; -h for help)", cmd, want)
	}
	c, err := parse(cmd, args[1:], stderr)
	if err != nil {
		return err
	}
	switch cmd {
	case "list":
		return c.list(ctx, stdout)
	case "show":
		return c.show(ctx, stdout)
	case "create":
		return c.create(ctx, stdout, stderr)
	case "move":
		return c.move(ctx, stdout, stderr)
	default:
		return c.delete(ctx, stdout, stderr)
	}
}

var synopses = map[string]string{
	"list":   "usage: audit-cursor list --db PATH [--json]\n\nEvery cursor of the database: name, last seq shipped, that record's hash, when it last moved, and its lag to the head of the log.",
	"show":   "usage: audit-cursor show --db PATH [--json] NAME\n\nOne cursor, as list prints it.",
	"create": "usage: audit-cursor create --db PATH [--json] NAME\n\nCreate the cursor NAME at seq 0 (nothing shipped yet), for a new exporter on a database\nthat has cursors: audit-read, audit-verify and audit-ack then take the name without --new-cursor,\nand its first run ships the whole log.",
	"move":   "usage: audit-cursor move --db PATH --to-seq N [--hash HEX] [--skip-records] [--json] NAME\n\nMove the cursor NAME back to seq N: the next run of its pipeline ships N+1 onwards again.\nThe shipped hash becomes the record_hash of the row at N (checked against --hash if given,\nand against the row's own content). Forward moves skip records and need --skip-records.\nStop the exporter's audit-ack first: it would move the cursor forward again.",
	"delete": "usage: audit-cursor delete --db PATH [--json] NAME\n\nDelete the cursor NAME (both cursor tables). Its exporter would start again at the beginning\nof the log, and audit-read --from-cursor NAME then needs --new-cursor while other cursors exist.",
}

func parse(cmd string, args []string, stderr io.Writer) (*config, error) {
	fs := cli.NewFlagSet(prog+" "+cmd, "AUDIT_CURSOR", synopses[cmd], stderr)
	c := &config{command: cmd}
	fs.StringVar(&c.db, "db", "", "the audit database (SQLite) holding the cursors")
	fs.BoolVar(&c.json, "json", false, "machine-readable output: one JSON object on stdout")
	fs.DurationVar(&c.busy, "busy-timeout", 10*time.Second, "how long to wait for a locked database")
	if cmd == "move" {
		fs.Int64Var(&c.toSeq, "to-seq", -1, "the seq to move the cursor to: the last record counted as shipped (0: the beginning of the log)")
		fs.StringVar(&c.hash, "hash", "", "the record_hash expected at --to-seq (64 hex): refuse the move if the row there differs")
		fs.BoolVar(&c.skip, "skip-records", false, "allow moving the cursor forward: the records skipped are never shipped to this exporter (logged)")
	}
	_ = fs.String("config", "", "config file (flag value pairs, one per line)")
	if cmd != "move" {
		cli.KnownEnv(fs, "to-seq", "hash", "skip-records") // move's, same prefix
	}
	flagArgs, names, err := splitArgs(fs, args)
	if err != nil {
		return nil, err
	}
	if err := cli.Parse(fs, flagArgs, "AUDIT_CURSOR"); err != nil {
		return nil, err
	}
	names = append(names, fs.Args()...)
	if c.skip && !onCommandLine(flagArgs, "skip-records") {
		// Skipping records is a decision for one command, never a setting
		// left behind in an environment or a file.
		return nil, cli.Usagef("move: --skip-records must be given on the command line, not through AUDIT_CURSOR_SKIP_RECORDS or -config")
	}
	switch {
	case c.db == "":
		return nil, cli.Usagef("%s: --db is required (the audit database)", cmd)
	case cmd == "list" && len(names) > 0:
		return nil, cli.Usagef("list: unexpected argument %q (to see one cursor: audit-cursor show --db %s %s)", names[0], c.db, names[0])
	case cmd != "list" && len(names) == 0:
		return nil, cli.Usagef("%s: which cursor? Give its name (audit-cursor list --db %s shows them)", cmd, c.db)
	case len(names) > 1:
		return nil, cli.Usagef("%s: one cursor at a time, got %q", cmd, names)
	case cmd == "move" && c.toSeq < 0:
		return nil, cli.Usagef("move: --to-seq N is required (N >= 0: the last record counted as shipped; 0 for the beginning of the log)")
	}
	if len(names) == 1 {
		c.name = names[0]
	}
	return c, nil
}

// onCommandLine reports whether the flag name is among args (-name,
// --name, -name=..., --name=...).
func onCommandLine(args []string, name string) bool {
	for _, a := range args {
		a = strings.TrimLeft(a, "-")
		if a == name || strings.HasPrefix(a, name+"=") {
			return true
		}
	}
	return false
}

// splitArgs separates the positional arguments from the flags, so that
// NAME may come before them ("show splunk:prod --db x"), which the flag
// package alone does not allow. "--" ends the flags.
func splitArgs(fs *flag.FlagSet, args []string) (flags, names []string, err error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return flags, append(names, args[i+1:]...), nil
		}
		if len(a) < 2 || a[0] != '-' {
			names = append(names, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		f := fs.Lookup(name)
		if f == nil {
			continue // the flag package reports it
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			continue
		}
		if i+1 < len(args) {
			i++
			flags = append(flags, args[i])
		}
	}
	return flags, names, nil
}

// cursorJSON is a cursor in --json output.
type cursorJSON struct {
	Exporter    string `json:"exporter"`
	LastSeq     int64  `json:"lastSeq"`
	LastHash    string `json:"lastHash"` // "" when not known (moved by another tool)
	UpdatedAt   string `json:"updatedAt"`
	UpdatedAtMs int64  `json:"updatedAtMs"`
	Lag         int64  `json:"lag"` // records in the log after lastSeq
}

func toJSON(c auditdb.Cursor, head int64) cursorJSON {
	return cursorJSON{Exporter: c.Exporter, LastSeq: c.LastSeq, LastHash: c.LastHash,
		UpdatedAt: c.UpdatedAt.UTC().Format(time.RFC3339Nano), UpdatedAtMs: c.UpdatedAt.UnixMilli(),
		Lag: max(0, head-c.LastSeq)}
}

func (c *config) reader(ctx context.Context) (*auditdb.DB, int64, error) {
	db, err := auditdb.OpenReader(ctx, c.db, auditdb.ReaderOptions{BusyTimeout: c.busy})
	if err != nil {
		return nil, 0, exitcode.New(exitcode.Database, err)
	}
	head, err := db.HeadSeq(ctx)
	if err != nil {
		db.Close()
		return nil, 0, exitcode.New(exitcode.Database, err)
	}
	return db, head, nil
}

func (c *config) list(ctx context.Context, stdout io.Writer) error {
	db, head, err := c.reader(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	cs, err := db.Cursors(ctx)
	if err != nil {
		return exitcode.New(exitcode.Database, err)
	}
	if c.json {
		out := struct {
			DB      string       `json:"db"`
			Head    int64        `json:"head"`
			Cursors []cursorJSON `json:"cursors"`
		}{DB: c.db, Head: head, Cursors: []cursorJSON{}}
		for _, cur := range cs {
			out.Cursors = append(out.Cursors, toJSON(cur, head))
		}
		return writeJSON(stdout, out)
	}
	if len(cs) == 0 {
		_, err := fmt.Fprintf(stdout, "%s: no cursors (head of the log: seq %d)\n", c.db, head)
		return outErr(err)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "EXPORTER\tLAST_SEQ\tLAG\tUPDATED\tLAST_HASH")
	for _, cur := range cs {
		j := toJSON(cur, head)
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", j.Exporter, j.LastSeq, j.Lag, j.UpdatedAt, hashText(cur))
	}
	if err := tw.Flush(); err != nil {
		return outErr(err)
	}
	_, err = fmt.Fprintf(stdout, "head of the log: seq %d\n", head)
	return outErr(err)
}

func hashText(c auditdb.Cursor) string {
	switch {
	case c.LastHash != "":
		return c.LastHash
	case c.LastSeq == 0:
		return "- (nothing shipped)"
	}
	return "- (not recorded: moved by another tool)"
}

func (c *config) show(ctx context.Context, stdout io.Writer) error {
	db, head, err := c.reader(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	cs, err := db.Cursors(ctx)
	if err != nil {
		return exitcode.New(exitcode.Database, err)
	}
	i := slices.IndexFunc(cs, func(x auditdb.Cursor) bool { return x.Exporter == c.name })
	if i < 0 {
		return unknown(c.name, cs)
	}
	j := toJSON(cs[i], head)
	if c.json {
		return writeJSON(stdout, struct {
			cursorJSON
			Head int64 `json:"head"`
		}{j, head})
	}
	_, err = fmt.Fprintf(stdout, "exporter:   %s\nlast seq:   %d\nlast hash:  %s\nupdated:    %s\nlag:        %d records (head of the log: seq %d)\n",
		j.Exporter, j.LastSeq, hashText(cs[i]), j.UpdatedAt, j.Lag, head)
	return outErr(err)
}

func unknown(name string, cs []auditdb.Cursor) error {
	if len(cs) == 0 {
		return cli.Usagef("%q: the database has no cursors", name)
	}
	names := make([]string, len(cs))
	for i, x := range cs {
		names[i] = x.Exporter
	}
	return exitcode.New(exitcode.Usage, &auditdb.UnknownCursorError{Name: name, Have: names})
}

func (c *config) writer(ctx context.Context) (*auditdb.Writer, error) {
	w, err := auditdb.OpenWriter(ctx, c.db, auditdb.WriterOptions{BusyTimeout: c.busy})
	if err != nil {
		return nil, exitcode.New(exitcode.Database, err)
	}
	return w, nil
}

func (c *config) move(ctx context.Context, stdout, stderr io.Writer) error {
	w, err := c.writer(ctx)
	if err != nil {
		return err
	}
	defer w.Close()
	mv, err := w.MoveCursor(ctx, c.name, c.toSeq, auditdb.MoveOptions{Hash: c.hash, SkipRecords: c.skip}, time.Now())
	if err != nil {
		return err
	}
	head, err := w.HeadSeq(ctx)
	if err != nil {
		return exitcode.New(exitcode.Database, err)
	}
	what := fmt.Sprintf("moved %s back from seq %d to seq %d: its next run ships %s again", c.name, mv.From.LastSeq, mv.To.LastSeq, reship(mv.To.LastSeq, mv.From.LastSeq))
	switch {
	case mv.Skipped > 0:
		what = fmt.Sprintf("moved %s FORWARD from seq %d to seq %d (--skip-records): records %s are never shipped to %s",
			c.name, mv.From.LastSeq, mv.To.LastSeq, span(mv.From.LastSeq+1, mv.To.LastSeq), c.name)
	case mv.From.LastSeq == mv.To.LastSeq:
		what = fmt.Sprintf("%s stays at seq %d (its shipped hash is now the row's record_hash)", c.name, mv.To.LastSeq)
	}
	// Always logged on stderr, a skip above all: it is a decision someone
	// will want to find later.
	fmt.Fprintf(stderr, "%s: %s: %s\n", prog, c.db, what)
	if c.json {
		return writeJSON(stdout, struct {
			Exporter       string     `json:"exporter"`
			From           cursorJSON `json:"from"`
			To             cursorJSON `json:"to"`
			SkippedRecords int64      `json:"skippedRecords"`
		}{c.name, toJSON(mv.From, head), toJSON(mv.To, head), mv.Skipped})
	}
	return nil
}

func reship(to, from int64) string {
	if to == from {
		return "nothing"
	}
	return span(to+1, from)
}

func span(a, b int64) string {
	if a == b {
		return "seq " + strconv.FormatInt(a, 10)
	}
	return fmt.Sprintf("seq %d..%d (%d records)", a, b, b-a+1)
}

func (c *config) create(ctx context.Context, stdout, stderr io.Writer) error {
	w, err := c.writer(ctx)
	if err != nil {
		return err
	}
	defer w.Close()
	cur, err := w.CreateCursor(ctx, c.name, time.Now())
	if err != nil {
		return err
	}
	head, err := w.HeadSeq(ctx)
	if err != nil {
		return exitcode.New(exitcode.Database, err)
	}
	fmt.Fprintf(stderr, "%s: %s: created cursor %s at seq 0: its first run ships %s\n", prog, c.db, c.name, reship(0, head))
	if c.json {
		return writeJSON(stdout, struct {
			Exporter string     `json:"exporter"`
			Created  cursorJSON `json:"created"`
		}{c.name, toJSON(cur, head)})
	}
	return nil
}

func (c *config) delete(ctx context.Context, stdout, stderr io.Writer) error {
	w, err := c.writer(ctx)
	if err != nil {
		return err
	}
	defer w.Close()
	old, err := w.DeleteCursor(ctx, c.name)
	if err != nil {
		return err
	}
	head, err := w.HeadSeq(ctx)
	if err != nil {
		return exitcode.New(exitcode.Database, err)
	}
	fmt.Fprintf(stderr, "%s: %s: deleted cursor %s (it was at seq %d); a pipeline started with --from-cursor %s --new-cursor ships the whole log again\n",
		prog, c.db, c.name, old.LastSeq, c.name)
	if c.json {
		return writeJSON(stdout, struct {
			Exporter string     `json:"exporter"`
			Deleted  cursorJSON `json:"deleted"`
		}{c.name, toJSON(old, head)})
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return outErr(err)
}

// outErr is a write error on stdout: quiet (exit 141) if the reader went
// away, else a runtime failure.
func outErr(err error) error {
	if err == nil {
		return nil
	}
	if exitcode.IsBrokenPipe(err) {
		return exitcode.New(exitcode.Pipe, err)
	}
	return fmt.Errorf("write stdout: %w", err)
}
