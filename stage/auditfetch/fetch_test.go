package auditfetch

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/auditpipe/auditpipe/lib/exitcode"
)

const (
	rec1 = `{"seq":1,"ts":1,"tenantId":"a","kind":"k","record":{"n":1},"prevHash":"","recordHash":"x"}`
	rec2 = `{"seq":2,"ts":2,"tenantId":"a","kind":"k","record":{"n":2},"prevHash":"x","recordHash":"y"}`
)

func row(msg string) string {
	b, _ := json.Marshal(map[string]string{"_msg": msg})
	return string(b)
}

func fetch(t *testing.T, body string) (stdout string, err error) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.FormValue("query"), "| stats") { // the kind and shipment checks
			w.Write([]byte(`{"splunk":"3","elastic":"0","datadog":"0","lo":"1","hi":"3","n":"3"}` + "\n"))
			return
		}
		w.Write([]byte(body))
	}))
	defer srv.Close()
	var out, stderr bytes.Buffer
	err = Run(context.Background(), []string{"--url", srv.URL}, strings.NewReader(""), &out, &stderr)
	return out.String(), err
}

// A bad row stops audit-fetch with exit 4 naming it, after the good rows
// before it were written out (they were lost in the buffer before), and a
// value holding a line break or invalid UTF-8 is a bad row, not two lines
// or garbage for audit-verify.
func TestBadRow(t *testing.T) {
	for _, tc := range []struct {
		name, bad, want string
	}{
		{"not JSON", "\xff\x00garbage", "row 3 of the query result"},
		{"no field", `{"_msg":12}`, "row 3 of the query result has no _msg field"},
		{"not an object", `[1,2]`, "row 3 of the query result has no _msg field"},
		{"line break", row(rec1 + "\n" + rec2), "row 3 of the query result: the _msg value holds a line break"},
		{"CR", row(rec1 + "\r"), "row 3 of the query result: the _msg value holds a line break"},
		{"invalid UTF-8", `{"_msg":"{\"seq\":3,\"x\":\"` + "\xff\xfe" + `\"}"}`, "row 3 of the query result: the _msg value is not valid UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := fetch(t, row(rec1)+"\n"+row(rec2)+"\n"+tc.bad+"\n"+row(rec1)+"\n")
			if code := exitcode.Of(err); code != exitcode.Input {
				t.Fatalf("exit code %d (%v), want 4", code, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
			if want := rec1 + "\n" + rec2 + "\n"; out != want {
				t.Errorf("stdout %q, want the two good rows before the bad one", out)
			}
		})
	}
}

func TestEmptyResult(t *testing.T) {
	out, err := fetch(t, "")
	if err != nil || out != "" {
		t.Fatalf("got %q, %v; want nothing and no error", out, err)
	}
}
