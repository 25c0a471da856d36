package config

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// parseBool accepts the spellings oslo.config accepts, in any case.
func parseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "yes", "on", "1":
		return true, nil
	case "false", "no", "off", "0":
		return false, nil
	}
	return false, errors.New("not a boolean (true/false, yes/no, on/off, 1/0)")
}

// parseInt parses a decimal integer with surrounding spaces allowed.
func parseInt(s string, bits int) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, bits)
	if err != nil {
		var ne *strconv.NumError
		if errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange) {
			return 0, errors.New("integer out of range")
		}
		return 0, errors.New("not an integer")
	}
	return n, nil
}

// parseList splits "a,b" or "[a, b]": brackets around the whole value are
// dropped, a trailing comma is ignored, items are trimmed and lose one pair
// of matching quotes. An empty value is the empty list.
func parseList(s string) ([]string, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "[") != strings.HasSuffix(s, "]") {
		return nil, errors.New("unbalanced brackets in list")
	}
	if strings.HasPrefix(s, "[") {
		s = strings.TrimSpace(s[1 : len(s)-1])
	}
	s = strings.TrimSuffix(s, ",")
	if strings.TrimSpace(s) == "" {
		return []string{}, nil
	}
	parts := strings.Split(s, ",")
	out := make([]string, 0, len(parts))
	for _, p := range parts {
		p = strings.TrimSpace(p)
		if len(p) >= 2 && (p[0] == '"' || p[0] == '\'') && p[len(p)-1] == p[0] {
			p = p[1 : len(p)-1]
		}
		out = append(out, p)
	}
	return out, nil
}

// parseDict splits "k:v,k2:v2" into a map. Keys and values are trimmed; a
// pair without ':' , an empty key or a repeated key is an error.
func parseDict(s string) (map[string]string, error) {
	s = strings.TrimSpace(s)
	out := map[string]string{}
	if s == "" {
		return out, nil
	}
	for _, pair := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(pair, ":")
		if !ok {
			return nil, fmt.Errorf("%q is not a name:value pair", strings.TrimSpace(pair))
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if k == "" {
			return nil, errors.New("empty name in name:value pair")
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("duplicate name %q", k)
		}
		out[k] = v
	}
	return out, nil
}

// formatDict renders a map as "k:v,k2:v2" with sorted keys.
func formatDict(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ":" + m[k]
	}
	return strings.Join(parts, ",")
}

// isIdentStart and isIdentChar follow oslo.config's template identifiers:
// a letter or '_', then letters, digits, '_' and '.'.
func isIdentStart(c byte) bool {
	return c == '_' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}

func isIdentChar(c byte) bool {
	return isIdentStart(c) || c == '.' || ('0' <= c && c <= '9')
}

// interpolate replaces $name and ${name} in s by lookup(name). "$$" and
// "\$" give a literal '$'; a '$' that starts no name is kept as it is.
func interpolate(s string, lookup func(name string) (string, error)) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	s = strings.ReplaceAll(s, `\$`, "$$")
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c != '$' || i+1 >= len(s) {
			b.WriteByte(c)
			i++
			continue
		}
		next := s[i+1]
		switch {
		case next == '$':
			b.WriteByte('$')
			i += 2
			continue
		case next == '{':
			j := i + 2
			if j < len(s) && isIdentStart(s[j]) {
				for j < len(s) && isIdentChar(s[j]) {
					j++
				}
				if j < len(s) && s[j] == '}' {
					v, err := lookup(s[i+2 : j])
					if err != nil {
						return "", err
					}
					b.WriteString(v)
					i = j + 1
					continue
				}
			}
		case isIdentStart(next):
			j := i + 1
			for j < len(s) && isIdentChar(s[j]) {
				j++
			}
			v, err := lookup(s[i+1 : j])
			if err != nil {
				return "", err
			}
			b.WriteString(v)
			i = j
			continue
		}
		b.WriteByte('$')
		i++
	}
	return b.String(), nil
}
