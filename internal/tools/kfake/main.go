// Command kfake runs an in-process Kafka cluster (github.com/twmb/franz-go's
// kfake: it speaks the Kafka protocol, keeps everything in memory) for shell
// tests and the fleet demo: three brokers on 127.0.0.1 by default. It prints
// the bootstrap addresses on stdout, one comma-separated line (and to
// --addr-file once listening), and stops cleanly on SIGINT or SIGTERM
// (exit 0). It is a test tool, not a broker to keep data in.
//
//	kfake [--brokers 3] [--ports 9092,9093,9094] [--topic audit:6 ...] [--addr-file FILE]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "kfake:", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

// topics is the repeatable --topic NAME[:PARTITIONS] flag.
type topics map[string]int32

func (t topics) String() string { return "" }

func (t topics) Set(s string) error {
	name, parts, ok := strings.Cut(s, ":")
	n := int64(1)
	if ok {
		var err error
		if n, err = strconv.ParseInt(parts, 10, 32); err != nil || n < 1 {
			return fmt.Errorf("partitions of %q: want a number >= 1", s)
		}
	}
	if name == "" {
		return fmt.Errorf("%q: want NAME[:PARTITIONS]", s)
	}
	t[name] = int32(n)
	return nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("kfake", flag.ContinueOnError)
	fs.SetOutput(stderr)
	nb := fs.Int("brokers", 3, "number of brokers")
	ports := fs.String("ports", "", "comma-separated ports, one per broker (default: free ports)")
	addrFile := fs.String("addr-file", "", "write the bootstrap addresses here (atomically) once listening")
	ts := topics{}
	fs.Var(ts, "topic", "topic to create, NAME[:PARTITIONS] (repeatable; default partitions 1)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if *nb < 1 {
		return fmt.Errorf("%w: --brokers must be at least 1", errUsage)
	}
	opts := []kfake.Opt{kfake.NumBrokers(*nb)}
	if *ports != "" {
		var ps []int
		for _, p := range strings.Split(*ports, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(p))
			if err != nil || n < 1 || n > 65535 {
				return fmt.Errorf("%w: --ports %q: want port numbers 1..65535", errUsage, *ports)
			}
			ps = append(ps, n)
		}
		if len(ps) != *nb {
			return fmt.Errorf("%w: --ports lists %d ports for %d brokers", errUsage, len(ps), *nb)
		}
		opts = append(opts, kfake.Ports(ps...))
	}
	for name, n := range ts {
		opts = append(opts, kfake.SeedTopics(n, name))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return err
	}
	defer c.Close()
	addrs := strings.Join(c.ListenAddrs(), ",")
	if *addrFile != "" {
		if err := os.WriteFile(*addrFile+".tmp", []byte(addrs+"\n"), 0o644); err != nil {
			return err
		}
		if err := os.Rename(*addrFile+".tmp", *addrFile); err != nil {
			return err
		}
	}
	fmt.Fprintln(stdout, addrs)
	<-ctx.Done()
	fmt.Fprintln(stderr, "kfake: stopped")
	return nil
}
