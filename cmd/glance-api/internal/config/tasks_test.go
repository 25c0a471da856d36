package config

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/glance-go/glance-go/domain"
)

func TestTasksOptions(t *testing.T) {
	noSystemDirs(t)
	cases := []struct {
		name string
		conf string
		want TasksConfig
		self string
		err  string // part of the error, "" for none
	}{
		{name: "defaults", conf: "[DEFAULT]\n", want: defaultTasks()},
		{name: "set", conf: "[DEFAULT]\nworker_self_reference_url = http://api-1:9292\npublic_endpoint = https://images.example.com\n" +
			"[taskflow_executor]\nmax_workers = 3\n[task]\ntask_time_to_live = 2\n[image_import_opts]\nmax_parallel_stores = 4\n",
			want: TasksConfig{MaxWorkers: 3, TimeToLive: 2, MaxParallelStores: 4, WorkerSelfReferenceURL: "http://api-1:9292"},
			self: "http://api-1:9292"},
		{name: "public endpoint stands in", conf: "[DEFAULT]\npublic_endpoint = https://images.example.com\n",
			want: defaultTasks(), self: "https://images.example.com"},
		{name: "no workers", conf: "[taskflow_executor]\nmax_workers = 0\n", err: "[taskflow_executor] max_workers"},
		{name: "no stores at once", conf: "[image_import_opts]\nmax_parallel_stores = 0\n", err: "[image_import_opts] max_parallel_stores"},
		{name: "negative lifetime", conf: "[task]\ntask_time_to_live = -1\n", err: "[task] task_time_to_live"},
		{name: "not a URL", conf: "[DEFAULT]\nworker_self_reference_url = api-1\n", err: "worker_self_reference_url"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			files := writeFiles(t, t.TempDir(), map[string]string{"glance-api.conf": tc.conf}, "glance-api.conf")
			c, ignored, err := Load(files, nil)
			if tc.err != "" {
				if !errors.Is(err, domain.ErrInvalid) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Load: %v, want an error naming %s", err, tc.err)
				}
				return
			}
			if err != nil || len(ignored) != 0 {
				t.Fatalf("Load: %v, ignored %v", err, ignored)
			}
			if c.Tasks != tc.want || c.SelfURL() != tc.self || c.TaskTTL() != time.Duration(tc.want.TimeToLive)*time.Hour {
				t.Errorf("Tasks = %+v, SelfURL %q, TaskTTL %v", c.Tasks, c.SelfURL(), c.TaskTTL())
			}
		})
	}
	if Default().Tasks != defaultTasks() {
		t.Errorf("embedded default: %+v", Default().Tasks)
	}
}
