package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// RSSSampler follows the memory of a server's processes: the given pids and
// all their descendants (Glance runs a parent and its workers).
type RSSSampler struct {
	roots []int
	proc  string // /proc, replaceable in tests

	mu   sync.Mutex
	peak int64 // largest summed VmRSS seen, bytes
	hwm  int64 // largest summed VmHWM seen, bytes
	n    int   // processes in the tree at the last sample

	stop chan struct{}
	done chan struct{}
}

// NewRSSSampler checks that every pid exists and returns a sampler for them.
func NewRSSSampler(pids []int) (*RSSSampler, error) {
	return newRSSSampler("/proc", pids)
}

func newRSSSampler(proc string, pids []int) (*RSSSampler, error) {
	for _, p := range pids {
		if _, err := os.Stat(filepath.Join(proc, strconv.Itoa(p), "status")); err != nil {
			return nil, fmt.Errorf("-pid %d: no such process", p)
		}
	}
	return &RSSSampler{roots: pids, proc: proc}, nil
}

// Start samples every interval until Stop.
func (s *RSSSampler) Start(interval time.Duration) {
	s.stop = make(chan struct{})
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			s.Sample()
			select {
			case <-s.stop:
				s.Sample()
				return
			case <-t.C:
			}
		}
	}()
}

// Stop ends the sampling started by Start.
func (s *RSSSampler) Stop() {
	if s.stop == nil {
		return
	}
	close(s.stop)
	<-s.done
	s.stop = nil
}

// Sample reads the tree's memory once.
func (s *RSSSampler) Sample() {
	var rss, hwm int64
	tree := s.tree()
	for _, p := range tree {
		r, h := s.status(p)
		rss += r
		hwm += h
	}
	s.mu.Lock()
	s.peak = max(s.peak, rss)
	s.hwm = max(s.hwm, hwm)
	s.n = len(tree)
	s.mu.Unlock()
}

// Peak returns the largest summed resident set seen, the largest sum of the
// processes' own peaks (VmHWM, an upper bound of the true peak), both in
// bytes, and how many processes the tree had at the last sample.
func (s *RSSSampler) Peak() (rss, hwm int64, procs int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak, s.hwm, s.n
}

// tree returns the roots still alive and their descendants.
func (s *RSSSampler) tree() []int {
	parent := map[int]int{}
	ents, _ := os.ReadDir(s.proc)
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		f := s.statFields(pid)
		if len(f) < 2 {
			continue
		}
		if pp, err := strconv.Atoi(f[1]); err == nil {
			parent[pid] = pp
		}
	}
	in := map[int]bool{}
	for _, r := range s.roots {
		if _, ok := parent[r]; ok {
			in[r] = true
		}
	}
	for changed := true; changed; {
		changed = false
		for pid, pp := range parent {
			if in[pp] && !in[pid] {
				in[pid] = true
				changed = true
			}
		}
	}
	out := make([]int, 0, len(in))
	for p := range in {
		out = append(out, p)
	}
	return out
}

// status returns VmRSS and VmHWM of one process in bytes.
func (s *RSSSampler) status(pid int) (rss, hwm int64) {
	f, err := os.Open(filepath.Join(s.proc, strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "VmRSS:"):
			rss = kB(line)
		case strings.HasPrefix(line, "VmHWM:"):
			hwm = kB(line)
		}
	}
	return rss, hwm
}

func kB(line string) int64 {
	f := strings.Fields(line)
	if len(f) < 2 {
		return 0
	}
	v, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0
	}
	return v << 10
}

// statFields returns the fields of /proc/PID/stat after the command name,
// which is in parentheses and may hold spaces: state, ppid, ... None when
// the process has gone.
func (s *RSSSampler) statFields(pid int) []string {
	b, err := os.ReadFile(filepath.Join(s.proc, strconv.Itoa(pid), "stat"))
	if err != nil {
		return nil
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(b[i+1:]))
}

// clockTicks is USER_HZ, the unit of the CPU times in /proc/PID/stat: 100
// on every Linux architecture this runs on.
const clockTicks = 100

// CPUTime returns the user and system CPU time used so far by the roots
// still alive and their descendants (/proc/PID/stat utime + stime). A
// process that has ended no longer counts.
func (s *RSSSampler) CPUTime() time.Duration {
	var ticks int64
	for _, p := range s.tree() {
		// After the command: state, ppid, ..., utime (11th), stime (12th).
		f := s.statFields(p)
		if len(f) < 13 {
			continue
		}
		u, err1 := strconv.ParseInt(f[11], 10, 64)
		st, err2 := strconv.ParseInt(f[12], 10, 64)
		if err1 == nil && err2 == nil {
			ticks += u + st
		}
	}
	return time.Duration(ticks) * time.Second / clockTicks
}
