package db

import (
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/glance-go/glance-go/domain"
)

// timeLayout is how Glance (SQLAlchemy) writes a DATETIME: naive UTC with
// microseconds. SQLite keeps it as text, so ours must sort the same way.
const timeLayout = "2006-01-02 15:04:05.000000"

// dbTime is a DATETIME column value: written in timeLayout, read from
// whatever the driver hands back.
type dbTime struct {
	T     time.Time
	Valid bool
}

// ts returns the column value for t, in UTC.
func ts(t time.Time) dbTime { return dbTime{T: t.UTC(), Valid: !t.IsZero()} }

// tsPtr returns the column value for an optional time.
func tsPtr(t *time.Time) dbTime {
	if t == nil {
		return dbTime{}
	}
	return ts(*t)
}

// Value implements driver.Valuer.
func (t dbTime) Value() (driver.Value, error) {
	if !t.Valid {
		return nil, nil
	}
	return t.T.UTC().Format(timeLayout), nil
}

var readLayouts = []string{
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	time.RFC3339Nano,
	"2006-01-02 15:04:05.999999999 -0700 MST",
	"2006-01-02",
}

// Scan implements sql.Scanner.
func (t *dbTime) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*t = dbTime{}
		return nil
	case time.Time:
		// A naive DATETIME comes back as if it were UTC; keep its wall clock.
		*t = dbTime{T: time.Date(v.Year(), v.Month(), v.Day(), v.Hour(), v.Minute(), v.Second(), v.Nanosecond(), time.UTC), Valid: true}
		return nil
	case []byte:
		return t.parse(string(v))
	case string:
		return t.parse(v)
	}
	return fmt.Errorf("cannot read %T as a time", src)
}

func (t *dbTime) parse(s string) error {
	s = strings.TrimSpace(s)
	for _, l := range readLayouts {
		if p, err := time.Parse(l, s); err == nil {
			*t = dbTime{T: p.UTC(), Valid: true}
			return nil
		}
	}
	return fmt.Errorf("cannot read %q as a time", s)
}

// out returns the time as the domain keeps it: UTC, to the microsecond the
// column holds (SQLite keeps them, Glance's MySQL DATETIME does not). The
// API shows whole seconds.
func (t dbTime) out() time.Time {
	if !t.Valid {
		return time.Time{}
	}
	return t.T.UTC().Truncate(time.Microsecond)
}

func (t dbTime) outPtr() *time.Time {
	if !t.Valid {
		return nil
	}
	v := t.out()
	return &v
}

// imageColumns are the images columns in the order scanImage reads them.
const imageColumns = "images.id, images.name, images.size, images.status, images.created_at, images.updated_at, " +
	"images.deleted_at, images.disk_format, images.container_format, images.checksum, images.owner, " +
	"images.min_disk, images.min_ram, images.protected, images.virtual_size, images.visibility, " +
	"images.os_hidden, images.os_hash_algo, images.os_hash_value"

// scanImage reads one row of imageColumns, then any extra columns into extra.
func scanImage(rows *sql.Rows, extra ...any) (domain.Meta, error) {
	var (
		m                                       domain.Meta
		name, diskFmt, contFmt, checksum, owner sql.NullString
		hashAlgo, hashValue                     sql.NullString
		size, vsize                             sql.NullInt64
		created, updated, deleted               dbTime
		status, visibility                      string
		protected, hidden                       bool
		minDisk, minRAM                         int64
	)
	dest := append([]any{&m.ID, &name, &size, &status, &created, &updated, &deleted, &diskFmt, &contFmt,
		&checksum, &owner, &minDisk, &minRAM, &protected, &vsize, &visibility, &hidden, &hashAlgo, &hashValue}, extra...)
	err := rows.Scan(dest...)
	if err != nil {
		return m, err
	}
	m.Name = strPtr(name)
	m.Size = intPtr(size)
	m.Status = domain.Status(status)
	m.CreatedAt = created.out()
	m.UpdatedAt = updated.out()
	if !updated.Valid {
		m.UpdatedAt = m.CreatedAt
	}
	m.DeletedAt = deleted.outPtr()
	m.DiskFormat = strPtr(diskFmt)
	m.ContainerFormat = strPtr(contFmt)
	m.Checksum = strPtr(checksum)
	m.Owner = strPtr(owner)
	m.MinDisk = int(minDisk)
	m.MinRAM = int(minRAM)
	m.Protected = protected
	m.VirtualSize = intPtr(vsize)
	m.Visibility = domain.Visibility(visibility)
	m.Hidden = hidden
	m.HashAlgo = strPtr(hashAlgo)
	m.HashValue = strPtr(hashValue)
	m.Properties = map[string]string{}
	m.Tags = []string{}
	return m, nil
}

func strPtr(s sql.NullString) *string {
	if !s.Valid {
		return nil
	}
	v := s.String
	return &v
}

func intPtr(n sql.NullInt64) *int64 {
	if !n.Valid {
		return nil
	}
	v := n.Int64
	return &v
}

// nullStr is the column value of an optional string.
func nullStr(p *string) any {
	if p == nil {
		return nil
	}
	return *p
}

// nullInt is the column value of an optional integer.
func nullInt(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

// boolInt is a boolean as the 0/1 both dialects store.
func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// encodeMeta renders location metadata the way Glance's JSONEncodedDict does.
func encodeMeta(m map[string]any) (string, error) {
	if m == nil {
		return "{}", nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "", domain.Errorf(domain.ErrInvalid, "Invalid location metadata: %v", err)
	}
	return string(b), nil
}

// decodeMeta reads location metadata; NULL and unreadable text give {}.
func decodeMeta(s sql.NullString) map[string]any {
	m := map[string]any{}
	if s.Valid && s.String != "" && s.String != "null" {
		if err := json.Unmarshal([]byte(s.String), &m); err != nil || m == nil {
			return map[string]any{}
		}
	}
	return m
}

// imageColumnCount is the number of imageColumns.
const imageColumnCount = 19

// decodeImageRow reads an image from the JSON array of imageColumns that
// SQLite's json_array builds: the same values scanImage reads, as JSON
// strings, numbers and nulls.
func decodeImageRow(b []byte) (domain.Meta, error) {
	var vals [imageColumnCount]jsonValue
	p := jsonText{b: b}
	n := 0
	if err := p.flat('[', ']', func() error {
		if n == len(vals) {
			return errJSONShape
		}
		v, err := p.value()
		vals[n] = v
		n++
		return err
	}); err != nil || n != len(vals) {
		return domain.Meta{}, fmt.Errorf("image row %.100q: %w", b, errJSONShape)
	}
	var (
		m   domain.Meta
		err error
	)
	text := func(i int) string {
		v := vals[i]
		if v.num != nil {
			return string(v.num)
		}
		return v.s
	}
	// The nullable fields share one allocation, as domain.Meta.Clone's do.
	block := new(struct {
		strs [7]string
		ints [2]int64
	})
	optText := func(i, slot int) *string {
		if vals[i].null {
			return nil
		}
		block.strs[slot] = text(i)
		return &block.strs[slot]
	}
	integer := func(i int) int64 {
		v := vals[i]
		if v.null || err != nil {
			return 0
		}
		src := v.num
		if src == nil {
			src = []byte(v.s)
		}
		n, perr := strconv.ParseInt(string(src), 10, 64)
		if perr != nil {
			f, ferr := strconv.ParseFloat(string(src), 64)
			if ferr != nil || f != math.Trunc(f) {
				err = fmt.Errorf("image column %d: %q is not an integer", i, src)
			}
			n = int64(f)
		}
		return n
	}
	optInt := func(i, slot int) *int64 {
		if vals[i].null {
			return nil
		}
		block.ints[slot] = integer(i)
		return &block.ints[slot]
	}
	boolean := func(i int) bool {
		switch n := integer(i); n {
		case 0, 1:
			return n == 1
		default:
			err = fmt.Errorf("image column %d: %d is not a boolean", i, n)
		}
		return false
	}
	timeOf := func(i int) dbTime {
		var t dbTime
		if vals[i].null || err != nil {
			return t
		}
		if vals[i].num != nil {
			err = fmt.Errorf("image column %d: %s is not a time", i, vals[i].num)
			return t
		}
		err = t.parse(vals[i].s)
		return t
	}
	m.ID = text(0)
	m.Name = optText(1, 0)
	m.Size = optInt(2, 0)
	m.Status = domain.Status(text(3))
	created, updated, deleted := timeOf(4), timeOf(5), timeOf(6)
	m.CreatedAt = created.out()
	m.UpdatedAt = updated.out()
	if !updated.Valid {
		m.UpdatedAt = m.CreatedAt
	}
	m.DeletedAt = deleted.outPtr()
	m.DiskFormat = optText(7, 1)
	m.ContainerFormat = optText(8, 2)
	m.Checksum = optText(9, 3)
	m.Owner = optText(10, 4)
	m.MinDisk = int(integer(11))
	m.MinRAM = int(integer(12))
	m.Protected = boolean(13)
	m.VirtualSize = optInt(14, 1)
	m.Visibility = domain.Visibility(text(15))
	m.Hidden = boolean(16)
	m.HashAlgo = optText(17, 5)
	m.HashValue = optText(18, 6)
	m.Properties = map[string]string{}
	m.Tags = []string{}
	if err != nil {
		return domain.Meta{}, err
	}
	return m, nil
}
