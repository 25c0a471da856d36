package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
)

// labels names each metric in the table, in the order the table shows them.
var labels = []struct{ scenario, metric, text string }{
	{ScSeed, "ops_per_s", "populate seeded images (once, aggregate)"},
	{ScSeed, "p50_ms", "populate seeded images p50"},
	{ScCreate, "ops_per_s", "create image (1 client)"},
	{ScCreate, "p50_ms", "create image p50"},
	{ScCreateLoad, "ops_per_s", "create image, concurrent clients (aggregate)"},
	{ScCreateLoad, "p50_ms", "create image, concurrent clients p50"},
	{ScShow, "p50_ms", "show p50"},
	{ScShow, "p99_ms", "show p99"},
	{ScShowLoad, "ops_per_s", "show, concurrent clients (aggregate)"},
	{ScPatch, "p50_ms", "PATCH one property p50"},
	{ScPatch, "p99_ms", "PATCH one property p99"},
	{ScList25, "p50_ms", "list 25 p50"},
	{ScList25, "p99_ms", "list 25 p99"},
	{ScList1000, "p50_ms", "list 1000 p50"},
	{ScList1000, "p99_ms", "list 1000 p99"},
	{ScUpload, "mb_per_s", "upload"},
	{ScUpload, "cpu_s_per_gb", "upload, server CPU per GB"},
	{ScDownload, "mb_per_s", "download"},
	{ScDownload, "cpu_s_per_gb", "download, server CPU per GB"},
	{ScDownload, "loopback_mb_per_s", "plain sendfile server (yardstick)"},
	{ScDownload, "loopback_copy_mb_per_s", "plain 1 MiB copy server (yardstick)"},
	{ScDownload, "share_of_loopback", "download / faster plain server"},
	{ScConcurrent, "mb_per_s", "concurrent uploads (aggregate)"},
}

func label(m *Metric) string {
	for _, l := range labels {
		if l.scenario == m.Scenario && l.metric == m.Name {
			return l.text
		}
	}
	return m.Scenario + " " + m.Name
}

func order(m *Metric) int {
	for i, l := range labels {
		if l.scenario == m.Scenario && l.metric == m.Name {
			return i
		}
	}
	return len(labels)
}

func num(v float64) string {
	switch {
	case math.IsNaN(v):
		return "-"
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// WriteTable prints the report as an aligned text table.
func WriteTable(w io.Writer, r *Report) error {
	name := r.Endpoint
	if r.Label != "" {
		name = r.Label + " at " + r.Endpoint
	}
	fmt.Fprintf(w, "glance-bench: %s; medians of %d rounds; %d seeded images (%d properties, 2 tags each) by %d clients\n",
		name, r.Rounds, r.SeedImages, seedProps, r.SeedClients)
	fmt.Fprintf(w, "create-load: %d clients at once; show-load: %d clients at once\n", r.CreateClients, r.Concurrent)
	fmt.Fprintf(w, "upload %s (%s); %d concurrent uploads of %s; lists on a %s; MB = 10^6 bytes\n",
		ByteSize(r.UploadSize), r.UploadMode, r.Concurrent, ByteSize(r.ConcurrentSize), r.ListConn)
	ms := append([]*Metric(nil), r.Metrics...)
	sortMetrics(ms)
	rss := fmt.Sprintf("server peak RSS (%d processes, summed)", r.Processes)
	width := len("operation")
	for _, m := range ms {
		width = max(width, len(label(m)))
	}
	if r.PeakRSS > 0 {
		width = max(width, len(rss))
	}
	// The first column is padded here so it reads left-aligned; tabwriter
	// right-aligns the figures.
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-*s\tunit\tmedian\trounds\tn/round\t\n", width, "operation")
	for _, m := range ms {
		rounds := make([]string, len(m.Rounds))
		for i, v := range m.Rounds {
			rounds[i] = num(v)
		}
		samples := make([]string, len(m.Samples))
		for i, v := range m.Samples {
			samples[i] = fmt.Sprint(v)
		}
		fmt.Fprintf(tw, "%-*s\t%s\t%s\t%s\t%s\t\n", width, label(m), m.Unit, num(m.Median),
			strings.Join(rounds, " "), strings.Join(samples, " "))
	}
	if r.PeakRSS > 0 {
		fmt.Fprintf(tw, "%-*s\tMB\t%.0f\t\t\t\n", width, rss, float64(r.PeakRSS)/1e6)
		fmt.Fprintf(tw, "%-*s\tMB\t%.0f\t\t\t\n", width, "server VmHWM (summed)", float64(r.PeakHWM)/1e6)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if r.Machine.MD5MBps > 0 {
		fmt.Fprintf(w, "this machine, one core: md5 %.0f MB/s, sha512 %.0f MB/s\n", r.Machine.MD5MBps, r.Machine.SHA512MBps)
	}
	fmt.Fprintf(w, "took %.0fs\n", r.Seconds)
	for _, e := range r.Errors {
		fmt.Fprintf(w, "error: %s\n", e)
	}
	return nil
}

func sortMetrics(ms []*Metric) {
	slices.SortStableFunc(ms, func(a, b *Metric) int { return order(a) - order(b) })
}

// WriteJSON prints the report as indented JSON; missing values are null.
func WriteJSON(w io.Writer, r *Report) error {
	type metric struct {
		Scenario string     `json:"scenario"`
		Name     string     `json:"metric"`
		Unit     string     `json:"unit"`
		Median   *float64   `json:"median"`
		Rounds   []*float64 `json:"rounds"`
		Samples  []int      `json:"samples"`
	}
	opt := func(v float64) *float64 {
		if math.IsNaN(v) {
			return nil
		}
		return &v
	}
	out := struct {
		*Report
		Metrics []metric `json:"metrics"`
	}{Report: r}
	ms := append([]*Metric(nil), r.Metrics...)
	sortMetrics(ms)
	for _, m := range ms {
		jm := metric{Scenario: m.Scenario, Name: m.Name, Unit: m.Unit, Median: opt(m.Median), Samples: m.Samples}
		for _, v := range m.Rounds {
			jm.Rounds = append(jm.Rounds, opt(v))
		}
		out.Metrics = append(out.Metrics, jm)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
