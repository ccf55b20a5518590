// Package metricstest reads what a stage exposes, for tests: a scrape of
// --metrics-listen or a --metrics-file textfile, parsed with the same
// parser Prometheus' tooling uses, and the address a stage prints.
package metricstest

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Families are parsed metric families by name.
type Families map[string]*dto.MetricFamily

// Parse parses the text exposition format.
func Parse(r io.Reader) (Families, error) {
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(r)
	return Families(mfs), err
}

// ReadFile parses a textfile.
func ReadFile(path string) (Families, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Parse(f)
}

// Scrape fetches and parses url (http://ADDR/metrics) in the text format.
func Scrape(url string) (Families, error) {
	c := http.Client{Timeout: 5 * time.Second}
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("scrape %s: %s", url, resp.Status)
	}
	return Parse(resp.Body)
}

// Value returns the value of the first series of name whose labels include
// every "name=value" in labels, and whether there is one.
func (f Families) Value(name string, labels ...string) (float64, bool) {
	mf := f[name]
	if mf == nil {
		return 0, false
	}
	for _, m := range mf.Metric {
		if matches(m, labels) {
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue(), true
			case m.Gauge != nil:
				return m.Gauge.GetValue(), true
			case m.Untyped != nil:
				return m.Untyped.GetValue(), true
			}
		}
	}
	return 0, false
}

// Get is Value that returns 0 for a missing series.
func (f Families) Get(name string, labels ...string) float64 {
	v, _ := f.Value(name, labels...)
	return v
}

// Labels returns the label sets of name's series as "a=1,b=2" strings,
// sorted.
func (f Families) Labels(name string) []string {
	var out []string
	if mf := f[name]; mf != nil {
		for _, m := range mf.Metric {
			var ls []string
			for _, l := range m.Label {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			sort.Strings(ls)
			out = append(out, strings.Join(ls, ","))
		}
	}
	sort.Strings(out)
	return out
}

func matches(m *dto.Metric, labels []string) bool {
	for _, want := range labels {
		k, v, _ := strings.Cut(want, "=")
		found := false
		for _, l := range m.Label {
			if l.GetName() == k && l.GetValue() == v {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

var addrRE = regexp.MustCompile(`metrics at http://([^/\s]+)/metrics`)

// Addr returns the address from a stage's "PROG: metrics at
// http://ADDR/metrics" line in stderr, "" if there is none yet.
func Addr(stderr string) string {
	if m := addrRE.FindStringSubmatch(stderr); m != nil {
		return m[1]
	}
	return ""
}
