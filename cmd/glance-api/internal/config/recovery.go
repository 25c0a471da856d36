package config

// RecoveryConfig is the [glance_go] section's crash recovery: options of
// glance-go's own, which Glance does not have (it leaves an image whose
// upload died in saving for ever).
type RecoveryConfig struct {
	// Lease is recovery_lease, in seconds: how long an image may stay in
	// saving, in uploading without data, or importing, without its record
	// being touched, before it is taken for abandoned. 0 means 300.
	Lease int
	// Interval is recovery_interval, in seconds: how often the server
	// looks for abandoned images after the sweep at start-up. 0 means 60;
	// a negative value sweeps at start-up only.
	Interval int
}

func init() {
	options = append(options,
		option{"glance_go", "recovery_lease", nil, func(c *Config) any { return &c.Recovery.Lease }},
		option{"glance_go", "recovery_interval", nil, func(c *Config) any { return &c.Recovery.Interval }},
	)
}
