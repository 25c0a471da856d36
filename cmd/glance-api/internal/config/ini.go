package config

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/glance-go/glance-go/domain"
)

// defaultSection is the one section whose name is matched exactly; every
// other section name is compared in lower case, as oslo.config does.
const defaultSection = "DEFAULT"

// normSection returns the name under which a section is looked up: DEFAULT as
// written, any other name lower-cased. "[Database]" is therefore the database
// section, while "[default]" is a section of its own that nothing reads.
func normSection(s string) string {
	if s == defaultSection {
		return s
	}
	return strings.ToLower(s)
}

// normKey returns the name under which an option is looked up: dashes and
// underscores are the same.
func normKey(k string) string { return strings.ReplaceAll(k, "-", "_") }

// entry is one assignment read from a file.
type entry struct {
	file    string
	line    int
	section string // normalised
	key     string // normalised
	value   string // quotes stripped, continuation lines joined with "\n"
}

func (e entry) where() string { return fmt.Sprintf("%s:%d", e.file, e.line) }

// iniFile is one parsed configuration file. Within a file the last
// assignment of an option wins.
type iniFile struct {
	name     string
	sections map[string]map[string]entry
	order    []entry // every assignment, in file order
}

func (f *iniFile) get(section, key string) (entry, bool) {
	e, ok := f.sections[section][key]
	return e, ok
}

// parseINI reads a file in the dialect oslo.config accepts: "[section]"
// headers; "key = value" or "key: value" (whichever separator comes first);
// comments only on lines starting with '#' or ';' (a '#' later in a line is
// part of the value); one pair of matching quotes around a value is removed;
// indented lines continue the previous value until a blank line.
func parseINI(name string, r io.Reader) (*iniFile, error) {
	f := &iniFile{name: name, sections: map[string]map[string]entry{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)

	var (
		section string
		cur     *entry // assignment still open for continuation lines
		lineno  int
	)
	perr := func(msg, line string) error {
		return domain.Errorf(domain.ErrInvalid, "%s:%d: %s: %q", name, lineno, msg, line)
	}
	flush := func() {
		if cur == nil {
			return
		}
		if f.sections[cur.section] == nil {
			f.sections[cur.section] = map[string]entry{}
		}
		f.sections[cur.section][cur.key] = *cur
		f.order = append(f.order, *cur)
		cur = nil
	}
	for sc.Scan() {
		lineno++
		raw := sc.Text()
		if lineno == 1 {
			raw = strings.TrimPrefix(raw, "\ufeff")
		}
		line := strings.TrimRight(raw, " \t\r\n\v\f")
		switch {
		case line == "":
			flush()
		case line[0] == ' ' || line[0] == '\t':
			trimmed := strings.TrimLeft(line, " \t")
			if cur == nil {
				if trimmed[0] == '#' || trimmed[0] == ';' {
					continue // an indented comment between assignments
				}
				return nil, perr("unexpected continuation line", line)
			}
			cur.value += "\n" + trimmed
		case line[0] == '[':
			flush()
			if !strings.HasSuffix(line, "]") {
				return nil, perr("invalid section (must end with ])", line)
			}
			if len(line) <= 2 {
				return nil, perr("empty section name", line)
			}
			section = normSection(line[1 : len(line)-1])
		case line[0] == '#' || line[0] == ';':
			flush()
		default:
			flush()
			key, value, ok := splitAssignment(line)
			if !ok {
				return nil, perr("no ':' or '=' found in assignment", line)
			}
			if key == "" {
				return nil, perr("option name cannot be empty", line)
			}
			if section == "" {
				return nil, perr("option set before any [section]", line)
			}
			cur = &entry{file: name, line: lineno, section: section, key: normKey(key), value: value}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, domain.Errorf(domain.ErrInvalid, "%s: %v", name, err)
	}
	flush()
	return f, nil
}

// splitAssignment splits "key = value" or "key: value" at the first '=' or
// ':', trims both sides and drops one pair of matching quotes around value.
func splitAssignment(line string) (key, value string, ok bool) {
	i := strings.IndexAny(line, "=:")
	if i < 0 {
		return "", "", false
	}
	key = strings.TrimSpace(line[:i])
	value = strings.TrimSpace(line[i+1:])
	if len(value) >= 2 && (value[0] == '"' || value[0] == '\'') && value[len(value)-1] == value[0] {
		value = value[1 : len(value)-1]
	}
	return key, value, true
}

// parseINIBytes is parseINI on an in-memory file.
func parseINIBytes(name string, b []byte) (*iniFile, error) {
	return parseINI(name, bytes.NewReader(b))
}
