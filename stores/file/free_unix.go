//go:build unix

package file

import "syscall"

// freeSpace reports the bytes an unprivileged user may still write on the
// filesystem of dir (statvfs f_bavail × f_bsize, as glance_store counts).
func freeSpace(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return uint64(st.Bavail) * uint64(st.Bsize), nil
}
