package config

// RuntimeConfig is the [glance_go] section's process settings, glance-go's
// own.
type RuntimeConfig struct {
	// MemoryLimit is memory_limit, in MiB: the soft limit of the Go
	// runtime's memory (the GOMEMLIMIT environment variable, when set,
	// wins). Near it the garbage collector runs more often and returns
	// freed memory to the system sooner, which keeps the resident size
	// flat under load; it never refuses an allocation. 0 means no limit.
	MemoryLimit int
	// RecordCache is record_cache: how many image records an SQLite
	// database keeps decoded in memory, so that shows and listings of
	// unchanged images skip SQLite (a few KiB each). Writes of this
	// process forget the records they change; MySQL and MariaDB keep
	// none, since the nodes of a cloud share them. 0 turns it off.
	RecordCache int
	// DatabaseCallTimeout is database_call_timeout, in seconds: the bound
	// of every call to the database, from the wait for a connection to the
	// last row. A call past it fails with 503. 0 means no bound.
	DatabaseCallTimeout int
}

func init() {
	options = append(options,
		option{"glance_go", "memory_limit", nil, func(c *Config) any { return &c.Runtime.MemoryLimit }},
		option{"glance_go", "record_cache", nil, func(c *Config) any { return &c.Runtime.RecordCache }},
		option{"glance_go", "database_call_timeout", nil, func(c *Config) any { return &c.Runtime.DatabaseCallTimeout }},
	)
}
