package file

// SetFreeSpace replaces how d measures the free space of a data directory.
func SetFreeSpace(d *Driver, f func(dir string) (uint64, error)) { d.freeSpace = f }
