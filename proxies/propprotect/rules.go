// Package propprotect is the property-protection ring of the gateway's onion:
// who may create, read, update and delete which extra properties of an
// image. It mirrors glance/common/property_utils.py (the rules file) and
// glance/api/property_protections.py (the proxies), with one deliberate
// difference: properties a caller cannot read are kept when it saves the
// image, where Glance drops them.
package propprotect

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/glance-go/glance-go/domain"
)

// The four operations a section must give.
const (
	OpCreate = "create"
	OpRead   = "read"
	OpUpdate = "update"
	OpDelete = "delete"
)

var ops = []string{OpCreate, OpRead, OpUpdate, OpDelete}

// The rule formats of property_protection_rule_format.
const (
	FormatRoles    = "roles"
	FormatPolicies = "policies"
)

// reservedPrefix names the properties Glance keeps for itself; they are
// open to everyone and a file cannot change that.
const reservedPrefix = "os_glance"

// perm is who may do one operation on the properties of one section.
type perm struct {
	everyone bool
	nobody   bool
	roles    []string // roles format, lower-cased
	policy   string   // policies format
}

type section struct {
	name  string
	re    *regexp.Regexp
	perms map[string]perm
}

// Rules are the sections of a property protection file, in file order.
// They are read-only once loaded and safe for concurrent use.
type Rules struct {
	format   string
	sections []section
	policy   func(c *domain.Caller, rule string) bool
}

// Load reads a property protection file. format is "roles" or "policies";
// for "policies", policyAllowed decides a named policy for a caller. Load
// fails on anything Glance would refuse to start with, and on regular
// expressions that Go reads differently from Python.
func Load(path, format string, policyAllowed func(c *domain.Caller, rule string) bool) (*Rules, error) {
	format = strings.ToLower(strings.TrimSpace(format))
	if format == "" {
		format = FormatRoles
	}
	if format != FormatRoles && format != FormatPolicies {
		return nil, fmt.Errorf("property protection: invalid rule format %q: the permitted values are 'roles' and 'policies'", format)
	}
	if format == FormatPolicies && policyAllowed == nil {
		return nil, fmt.Errorf("property protection: the policies format needs a policy enforcer")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("property protection file: %w", err)
	}
	ini, err := parseINI(data)
	if err != nil {
		return nil, fmt.Errorf("property protection file %s: %w", path, err)
	}
	r := &Rules{format: format, policy: policyAllowed}
	everyone := perm{everyone: true}
	r.sections = append(r.sections, section{
		name:  reservedPrefix + ".*",
		re:    regexp.MustCompile(`^` + reservedPrefix),
		perms: map[string]perm{OpCreate: everyone, OpRead: everyone, OpUpdate: everyone, OpDelete: everyone},
	})
	for _, s := range ini.sections {
		if strings.HasPrefix(s.name, reservedPrefix) {
			continue // reserved: replaced by the section above
		}
		re, err := compile(s.name)
		if err != nil {
			return nil, fmt.Errorf("property protection file %s: section [%s]: %w", path, s.name, err)
		}
		sec := section{name: s.name, re: re, perms: map[string]perm{}}
		for _, op := range ops {
			v, ok := s.get(op, ini.defaults)
			if !ok {
				return nil, fmt.Errorf("property protection file %s: section [%s] has no %q", path, s.name, op)
			}
			p, err := parsePerm(v, format)
			if err != nil {
				return nil, fmt.Errorf("property protection file %s: [%s] %s = %s: %w", path, s.name, op, v, err)
			}
			sec.perms[op] = p
		}
		r.sections = append(r.sections, sec)
	}
	return r, nil
}

func parsePerm(v, format string) (perm, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return perm{nobody: true}, nil // Glance warns and lets no one
	}
	if format == FormatPolicies {
		if strings.Contains(v, ",") {
			return perm{}, fmt.Errorf("only one policy may be given per operation; combine policies in the policy file")
		}
		switch v {
		case "@":
			return perm{everyone: true}, nil
		case "!":
			return perm{nobody: true}, nil
		}
		return perm{policy: v}, nil
	}
	var p perm
	for _, role := range strings.Split(v, ",") {
		role = strings.ToLower(strings.TrimSpace(role))
		switch role {
		case "@":
			p.everyone = true
		case "!":
			p.nobody = true
		case "":
		default:
			p.roles = append(p.roles, role)
		}
	}
	if p.everyone && p.nobody {
		return perm{}, fmt.Errorf("'@' and '!' are mutually exclusive")
	}
	if p.nobody {
		return perm{nobody: true}, nil
	}
	return p, nil
}

// pythonOnly matches regular expression syntax that Python accepts and Go
// either rejects or reads differently.
var pythonOnly = []struct {
	re   *regexp.Regexp
	what string
}{
	{regexp.MustCompile(`\(\?[=!]`), "lookahead (?= or (?!"},
	{regexp.MustCompile(`\(\?<[=!]`), "lookbehind (?<= or (?<!"},
	{regexp.MustCompile(`\(\?P=`), "named backreference (?P=name)"},
	{regexp.MustCompile(`\(\?\(`), "conditional group (?(...)"},
	{regexp.MustCompile(`\\[1-9]`), "backreference \\1"},
	{regexp.MustCompile(`\\Z`), "\\Z (write \\z)"},
	{regexp.MustCompile(`\{,`), "an open lower bound {,n}"},
	{regexp.MustCompile(`\(\?[aLux]`), "the a, L, u or x flag"},
}

// compile compiles a section name. Names are searched, unanchored, as
// Python's re.search does.
func compile(name string) (*regexp.Regexp, error) {
	for _, p := range pythonOnly {
		if p.re.MatchString(name) {
			return nil, fmt.Errorf("the regular expression uses %s, which Python has and Go's RE2 syntax does not", p.what)
		}
	}
	re, err := regexp.Compile(name)
	if err != nil {
		return nil, fmt.Errorf("the regular expression does not compile (Go RE2 syntax): %w", err)
	}
	return re, nil
}

// Allowed reports whether c may do op ("create", "read", "update" or
// "delete") on the property named prop. The first section whose regular
// expression matches the name decides; a name no section matches is
// refused to everyone.
func (r *Rules) Allowed(c *domain.Caller, prop, op string) bool {
	for _, s := range r.sections {
		if !s.re.MatchString(prop) {
			continue
		}
		p, ok := s.perms[op]
		switch {
		case !ok || p.nobody:
			return false
		case p.everyone:
			return true
		case p.policy != "":
			return r.policy != nil && c != nil && r.policy(c, p.policy)
		}
		if c == nil {
			return false
		}
		for _, role := range p.roles {
			if hasRole(c.Roles, role) || hasRole(c.ServiceRoles, role) {
				return true
			}
		}
		return false
	}
	return false
}

func hasRole(roles []string, role string) bool {
	return slices.ContainsFunc(roles, func(r string) bool { return strings.EqualFold(r, role) })
}

// iniSection is one [section] of the file, in order.
type iniSection struct {
	name string
	keys map[string]string
}

func (s iniSection) get(key string, defaults map[string]string) (string, bool) {
	if v, ok := s.keys[key]; ok {
		return v, true
	}
	v, ok := defaults[key]
	return v, ok
}

type iniFile struct {
	sections []iniSection
	defaults map[string]string
}

// parseINI reads the file as Python's configparser does by default: keys
// are case-insensitive, "=" or ":" separates a key from its value, lines
// starting with # or ; are comments, an indented line continues the value
// above, [DEFAULT] gives values to every section, and a section or a key
// given twice is an error.
func parseINI(data []byte) (*iniFile, error) {
	f := &iniFile{defaults: map[string]string{}}
	var cur map[string]string
	var lastKey string
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		raw := sc.Text()
		line := strings.TrimSpace(raw)
		if line == "" || line[0] == '#' || line[0] == ';' {
			lastKey = ""
			continue
		}
		if raw[0] == ' ' || raw[0] == '\t' {
			if cur == nil || lastKey == "" {
				return nil, fmt.Errorf("line %d: an indented line continues nothing", n)
			}
			cur[lastKey] += "\n" + line
			continue
		}
		if line[0] == '[' {
			end := strings.LastIndexByte(line, ']')
			if end < 2 {
				return nil, fmt.Errorf("line %d: bad section header %q", n, line)
			}
			name := line[1:end]
			if seen[name] {
				return nil, fmt.Errorf("line %d: section [%s] given twice", n, name)
			}
			seen[name] = true
			if name == "DEFAULT" {
				cur = f.defaults
			} else {
				f.sections = append(f.sections, iniSection{name: name, keys: map[string]string{}})
				cur = f.sections[len(f.sections)-1].keys
			}
			lastKey = ""
			continue
		}
		if cur == nil {
			return nil, fmt.Errorf("line %d: a key before any [section]", n)
		}
		i := strings.IndexAny(line, "=:")
		if i < 1 {
			return nil, fmt.Errorf("line %d: want key = value, got %q", n, line)
		}
		key := strings.ToLower(strings.TrimSpace(line[:i]))
		if _, dup := cur[key]; dup {
			return nil, fmt.Errorf("line %d: %q given twice in one section", n, key)
		}
		cur[key] = strings.TrimSpace(line[i+1:])
		lastKey = key
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return f, nil
}
