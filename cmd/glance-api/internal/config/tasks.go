package config

import "time"

// TasksConfig holds the options of the import tasks.
type TasksConfig struct {
	// MaxWorkers is [taskflow_executor] max_workers: how many import
	// tasks run at once.
	MaxWorkers int
	// TimeToLive is [task] task_time_to_live, in hours: how long a
	// finished task is kept.
	TimeToLive int
	// MaxParallelStores is [image_import_opts] max_parallel_stores: how
	// many stores one import writes to at once.
	MaxParallelStores int
	// WorkerSelfReferenceURL is [DEFAULT] worker_self_reference_url: the
	// URL other API workers reach this one at, recorded on the images it
	// stages; "" falls back to public_endpoint.
	WorkerSelfReferenceURL string
}

// defaultTasks returns Glance's defaults for TasksConfig.
func defaultTasks() TasksConfig {
	return TasksConfig{MaxWorkers: 10, TimeToLive: 48, MaxParallelStores: 1}
}

func init() {
	options = append(options,
		option{"taskflow_executor", "max_workers", nil, func(c *Config) any { return &c.Tasks.MaxWorkers }},
		option{"task", "task_time_to_live", nil, func(c *Config) any { return &c.Tasks.TimeToLive }},
		option{"image_import_opts", "max_parallel_stores", nil, func(c *Config) any { return &c.Tasks.MaxParallelStores }},
		option{"DEFAULT", "worker_self_reference_url", nil, func(c *Config) any { return &c.Tasks.WorkerSelfReferenceURL }},
	)
}

// checkTasks checks the task options one by one.
func (c *Config) checkTasks() error {
	t := c.Tasks
	checks := []struct {
		section, option string
		value           any
		bad             string
	}{
		{"taskflow_executor", "max_workers", t.MaxWorkers, inRange(int64(t.MaxWorkers), 1, 1<<16)},
		{"task", "task_time_to_live", t.TimeToLive, inRange(int64(t.TimeToLive), 0, 1<<20)},
		{"image_import_opts", "max_parallel_stores", t.MaxParallelStores, inRange(int64(t.MaxParallelStores), 1, 1<<10)},
		{"DEFAULT", "worker_self_reference_url", t.WorkerSelfReferenceURL, checkEndpoint(t.WorkerSelfReferenceURL)},
	}
	for _, ck := range checks {
		if ck.bad != "" {
			return c.fieldError(ck.section, ck.option, ck.value, "%s", ck.bad)
		}
	}
	return nil
}

// TaskTTL is task_time_to_live as a duration.
func (c *Config) TaskTTL() time.Duration { return time.Duration(c.Tasks.TimeToLive) * time.Hour }

// SelfURL is the URL this worker records on the images it stages, for the
// other workers: worker_self_reference_url, else public_endpoint.
func (c *Config) SelfURL() string {
	if c.Tasks.WorkerSelfReferenceURL != "" {
		return c.Tasks.WorkerSelfReferenceURL
	}
	return c.PublicEndpoint
}
