package db

import (
	"encoding/json"
	"errors"
	"unicode/utf16"
	"unicode/utf8"
)

// The SQLite loads aggregate an image's properties into a JSON object of
// strings and its tags into a JSON array of strings. A listing decodes a
// thousand of each, so these two shapes get a decoder of their own; any
// other input falls back to encoding/json.

var errJSONShape = errors.New("not a flat JSON object or array of strings")

// decodeStringMap adds the members of the JSON object b, whose values are
// all strings, to into.
func decodeStringMap(b []byte, into map[string]string) error {
	p := jsonText{b: b}
	if err := p.flat('{', '}', func() error {
		k, err := p.str()
		if err != nil {
			return err
		}
		if err := p.expect(':'); err != nil {
			return err
		}
		v, err := p.str()
		if err != nil {
			return err
		}
		into[k] = v
		return nil
	}); err != nil {
		return json.Unmarshal(b, &into)
	}
	return nil
}

// decodeStrings returns the elements of the JSON array of strings b.
func decodeStrings(b []byte) ([]string, error) {
	p := jsonText{b: b}
	var out []string
	if err := p.flat('[', ']', func() error {
		s, err := p.str()
		out = append(out, s)
		return err
	}); err != nil {
		out = nil
		err = json.Unmarshal(b, &out)
		return out, err
	}
	return out, nil
}

// jsonText reads JSON text from b at i.
type jsonText struct {
	b []byte
	i int
}

func (p *jsonText) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jsonText) expect(c byte) error {
	p.space()
	if p.i >= len(p.b) || p.b[p.i] != c {
		return errJSONShape
	}
	p.i++
	return nil
}

// flat reads open, then elements separated by commas, each read by elem,
// then close and the end of the text.
func (p *jsonText) flat(open, close byte, elem func() error) error {
	if err := p.expect(open); err != nil {
		return err
	}
	p.space()
	if p.i < len(p.b) && p.b[p.i] == close {
		p.i++
	} else {
		for {
			if err := elem(); err != nil {
				return err
			}
			p.space()
			if p.i >= len(p.b) {
				return errJSONShape
			}
			c := p.b[p.i]
			p.i++
			if c == close {
				break
			}
			if c != ',' {
				return errJSONShape
			}
		}
	}
	p.space()
	if p.i != len(p.b) {
		return errJSONShape
	}
	return nil
}

// str reads one JSON string.
func (p *jsonText) str() (string, error) {
	if err := p.expect('"'); err != nil {
		return "", err
	}
	start := p.i
	for j := start; j < len(p.b); j++ {
		switch c := p.b[j]; {
		case c == '"':
			p.i = j + 1
			return string(p.b[start:j]), nil
		case c == '\\':
			return p.escaped(start)
		case c < 0x20:
			return "", errJSONShape
		}
	}
	return "", errJSONShape
}

// escaped reads the rest of a string that holds escapes, from start.
func (p *jsonText) escaped(start int) (string, error) {
	out := make([]byte, 0, len(p.b)-start)
	for j := start; j < len(p.b); {
		c := p.b[j]
		switch {
		case c == '"':
			p.i = j + 1
			return string(out), nil
		case c < 0x20:
			return "", errJSONShape
		case c != '\\':
			out = append(out, c)
			j++
			continue
		}
		if j+1 >= len(p.b) {
			return "", errJSONShape
		}
		e := p.b[j+1]
		j += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := hex4(p.b, j)
			if !ok {
				return "", errJSONShape
			}
			j += 4
			if utf16.IsSurrogate(r) {
				r2, ok := rune(0), false
				if j+6 <= len(p.b) && p.b[j] == '\\' && p.b[j+1] == 'u' {
					r2, ok = hex4(p.b, j+2)
				}
				if dec := utf16.DecodeRune(r, r2); ok && dec != utf8.RuneError {
					r = dec
					j += 6
				} else {
					r = utf8.RuneError
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			return "", errJSONShape
		}
	}
	return "", errJSONShape
}

// hex4 reads four hex digits at b[i:].
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// jsonValue is one element of a flat JSON array: a string, null, or the
// text of a number.
type jsonValue struct {
	s    string
	num  []byte
	null bool
}

// value reads one string, null or number.
func (p *jsonText) value() (jsonValue, error) {
	p.space()
	if p.i >= len(p.b) {
		return jsonValue{}, errJSONShape
	}
	switch c := p.b[p.i]; {
	case c == '"':
		s, err := p.str()
		return jsonValue{s: s}, err
	case c == 'n':
		if len(p.b)-p.i >= 4 && string(p.b[p.i:p.i+4]) == "null" {
			p.i += 4
			return jsonValue{null: true}, nil
		}
	case c == '-' || (c >= '0' && c <= '9'):
		start := p.i
		for p.i < len(p.b) {
			c := p.b[p.i]
			if (c < '0' || c > '9') && c != '-' && c != '+' && c != '.' && c != 'e' && c != 'E' {
				break
			}
			p.i++
		}
		return jsonValue{num: p.b[start:p.i]}, nil
	}
	return jsonValue{}, errJSONShape
}
