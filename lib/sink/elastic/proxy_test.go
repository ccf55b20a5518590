package elastic

import (
	"net/http"
	"net/http/httputil"
	"net/url"
	"testing"

	"github.com/auditpipe/auditpipe/internal/fakehttp"
)

// headerProxy forwards to another server and adds headers to its answers
// (to look like VictoriaLogs to the sink).
type headerProxy struct {
	h  http.Header
	to string
}

func (p *headerProxy) start(t *testing.T) string {
	u, _ := url.Parse(p.to)
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = func(r *http.Response) error {
		for k, v := range p.h {
			r.Header[k] = v
		}
		return nil
	}
	s := fakehttp.Start("proxy", rp, false)
	t.Cleanup(s.Close)
	return s.URL
}
