package config

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Error is one problem found in a configuration file. Parse joins all of them with
// errors.Join, so a caller can list every problem (errors.As finds the first one).
type Error struct {
	File    string // file name as given to Parse or Load
	Line    int    // 1-based; 0 when the problem has no single line (e.g. nothing defined)
	Cluster string // the cluster's name; "" when unnamed or for a top-level problem
	Index   int    // position of the cluster in the file; -1 for a top-level problem
	Key     string // key path inside the cluster (or top level), e.g. "servers[2]"
	Msg     string
}

// Error formats the problem as `file:line: cluster "name": key: message`.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	switch {
	case e.Cluster != "":
		fmt.Fprintf(&b, "cluster %q: ", e.Cluster)
	case e.Index >= 0:
		fmt.Fprintf(&b, "clusters[%d]: ", e.Index)
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// problems collects Errors so that a file with many mistakes is fixed in one round.
type problems []*Error

// join returns nil or all problems in file order (stable, so problems on one line keep the
// order in which the checks found them).
func (ps problems) join() error {
	if len(ps) == 0 {
		return nil
	}
	sorted := slices.Clone(ps)
	slices.SortStableFunc(sorted, func(a, b *Error) int { return cmp.Compare(a.Line, b.Line) })
	errs := make([]error, len(sorted))
	for i, p := range sorted {
		errs[i] = p
	}
	return errors.Join(errs...)
}
