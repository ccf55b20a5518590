package ack

import (
	"bufio"
	"io"
	"strings"
	"testing"
)

func TestReadLineBounded(t *testing.T) {
	in := "short\n" + strings.Repeat("x", 200) + "\nlast"
	br := bufio.NewReaderSize(strings.NewReader(in), 16)
	got, err := ReadLine(br, 64)
	if err != nil || string(got) != "short\n" {
		t.Fatalf("first line %q, %v", got, err)
	}
	if _, err := ReadLine(br, 64); err != ErrLineTooLong {
		t.Fatalf("long line: err %v, want ErrLineTooLong", err)
	}
	got, err = ReadLine(br, 64)
	if err != io.EOF || string(got) != "last" {
		t.Fatalf("last line %q, %v; want the partial line and EOF", got, err)
	}
}
