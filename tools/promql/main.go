// promql-check: parses PromQL expressions with Prometheus's own parser and names the
// metrics each one selects, so the chart's tests can check the PrometheusRule's alerts.
//
//	echo '["up == 0", "rate(x[5m]"]' | promql-check
//	[{"expr":"up == 0","metrics":["up"]},{"expr":"rate(x[5m]","error":"1:11: parse error: ..."}]
//
// Input: a JSON array of expressions on stdin. Output: a JSON array, one object per
// expression, in order: the metric names of its vector and matrix selectors (sorted,
// once each), or the parse error. Exit status 0 unless the input is not such an array.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"

	"github.com/prometheus/prometheus/promql/parser"
)

type result struct {
	Expr    string   `json:"expr"`
	Metrics []string `json:"metrics,omitempty"`
	Error   string   `json:"error,omitempty"`
}

func check(expr string) result {
	e, err := parser.ParseExpr(expr)
	if err != nil {
		return result{Expr: expr, Error: err.Error()}
	}
	seen := map[string]bool{}
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if v, ok := n.(*parser.VectorSelector); ok {
			seen[v.Name] = true
		}
		return nil
	})
	names := make([]string, 0, len(seen))
	for name := range seen {
		names = append(names, name)
	}
	sort.Strings(names)
	return result{Expr: expr, Metrics: names}
}

func main() {
	var exprs []string
	if err := json.NewDecoder(os.Stdin).Decode(&exprs); err != nil {
		fmt.Fprintf(os.Stderr, "promql-check: stdin must be a JSON array of strings: %v\n", err)
		os.Exit(2)
	}
	out := make([]result, 0, len(exprs))
	for _, e := range exprs {
		out = append(out, check(e))
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fmt.Fprintf(os.Stderr, "promql-check: %v\n", err)
		os.Exit(1)
	}
}
