package stores

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Opener builds a backend of one store type from the options of its
// configuration section. It fills Driver and Properties; Open fills the
// rest.
type Opener func(o *Options) (*Backend, error)

var registry = struct {
	sync.RWMutex
	m map[string]Opener
}{m: map[string]Opener{}}

// Register makes a store type available to Open under name (the type in
// enabled_backends: file, http, rbd). Driver packages call it from init;
// it panics if name is empty, open is nil or name is taken.
func Register(name string, open Opener) {
	registry.Lock()
	defer registry.Unlock()
	switch {
	case name == "" || open == nil:
		panic("stores: Register needs a name and an opener")
	case registry.m[name] != nil:
		panic("stores: store type " + name + " registered twice")
	}
	registry.m[name] = open
}

// Types lists the registered store types, sorted.
func Types() []string {
	registry.RLock()
	defer registry.RUnlock()
	names := make([]string, 0, len(registry.m))
	for n := range registry.m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Open builds backend id of store type typ from the options of its
// section: the type's driver, plus store_description and weight, which
// every type takes. It reports an unknown type, and the first invalid
// option, naming the section.
func Open(id, typ string, o *Options) (*Backend, error) {
	registry.RLock()
	open := registry.m[typ]
	registry.RUnlock()
	if open == nil {
		return nil, fmt.Errorf("stores: backend %q: store type %q is not available in this build (available: %s)",
			id, typ, strings.Join(Types(), ", "))
	}
	if o == nil {
		o = &Options{}
	}
	if o.Section == "" {
		o.Section = id
	}
	desc := o.String("store_description", "")
	weight := o.Int("weight", 0)
	if err := o.Err(); err != nil {
		return nil, err
	}
	b, err := open(o)
	if err != nil {
		return nil, fmt.Errorf("stores: backend %q: %w", id, err)
	}
	if err := o.Err(); err != nil {
		return nil, err
	}
	b.ID, b.Type, b.Description, b.Weight = id, typ, desc, weight
	if b.Properties == nil {
		b.Properties = map[string]any{}
	}
	return b, nil
}

// Options are the options of one store's configuration section, as
// written, with $references already resolved. The getters parse a value the
// way oslo.config does, fall back to Defaults and then to the default they
// are given, and remember the first invalid value for Err.
type Options struct {
	// Section names the section in messages ([fast] weight = …).
	Section string
	// Values holds each option's value; an option written more than once
	// has its last value here.
	Values map[string]string
	// Multi holds every value of the multi-valued options
	// (filesystem_store_datadirs), in the order written.
	Multi map[string][]string
	// Defaults overrides the built-in default of an option, as Glance
	// does for its reserved stores' data directories.
	Defaults map[string]string

	used map[string]bool
	err  error
}

// lookup returns an option's value and whether the section sets it, and
// marks the option as used.
func (o *Options) lookup(name string) (string, bool) {
	if o.used == nil {
		o.used = map[string]bool{}
	}
	o.used[name] = true
	v, ok := o.Values[name]
	return v, ok
}

// Has reports whether the section sets the option.
func (o *Options) Has(name string) bool {
	_, ok := o.lookup(name)
	if !ok {
		_, ok = o.Multi[name]
	}
	return ok
}

func (o *Options) fail(name, value, msg string) {
	if o.err == nil {
		o.err = fmt.Errorf("[%s] %s = %q: %s", o.Section, name, value, msg)
	}
}

// Fail records a problem with an option's value found by the caller, unless
// an earlier one was recorded.
func (o *Options) Fail(name, msg string) {
	v, _ := o.lookup(name)
	o.fail(name, v, msg)
}

// String returns an option's value, else its value in Defaults, else def.
func (o *Options) String(name, def string) string {
	if v, ok := o.lookup(name); ok {
		return v
	}
	if v, ok := o.Defaults[name]; ok {
		return v
	}
	return def
}

// Int returns an option's integer value; an empty value keeps the default.
func (o *Options) Int(name string, def int) int {
	v := strings.TrimSpace(o.String(name, ""))
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		var ne *strconv.NumError
		if errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange) {
			o.fail(name, v, "integer out of range")
		} else {
			o.fail(name, v, "not an integer")
		}
		return def
	}
	return n
}

// Bool returns an option's boolean value (true/false, yes/no, on/off, 1/0
// in any case); an empty value keeps the default.
func (o *Options) Bool(name string, def bool) bool {
	v := strings.TrimSpace(o.String(name, ""))
	switch strings.ToLower(v) {
	case "":
		return def
	case "true", "yes", "on", "1":
		return true
	case "false", "no", "off", "0":
		return false
	}
	o.fail(name, v, "not a boolean (true/false, yes/no, on/off, 1/0)")
	return def
}

// Dict returns an option written as "key:value,key2:value2"; a value may
// itself contain ':' (http:10.0.0.1:3128).
func (o *Options) Dict(name string) map[string]string {
	v := strings.TrimSpace(o.String(name, ""))
	out := map[string]string{}
	if v == "" {
		return out
	}
	for _, pair := range strings.Split(v, ",") {
		k, val, ok := strings.Cut(pair, ":")
		k, val = strings.TrimSpace(k), strings.TrimSpace(val)
		if !ok || k == "" {
			o.fail(name, v, fmt.Sprintf("%q is not a name:value pair", strings.TrimSpace(pair)))
			return map[string]string{}
		}
		out[k] = val
	}
	return out
}

// Strings returns every value of a multi-valued option, or, when Multi
// does not hold it, its single value as a one-item list ("" gives none).
func (o *Options) Strings(name string) []string {
	if vs, ok := o.Multi[name]; ok {
		o.lookup(name)
		return slices.Clone(vs)
	}
	if v := o.String(name, ""); v != "" {
		return []string{v}
	}
	return nil
}

// Err returns the first invalid value any getter met, or nil.
func (o *Options) Err() error { return o.err }

// Unused lists, sorted, the options of the section that no getter asked
// for: options of other drivers, or ones glance-go does not implement.
func (o *Options) Unused() []string {
	var out []string
	for k := range o.Values {
		if !o.used[k] {
			out = append(out, k)
		}
	}
	for k := range o.Multi {
		if _, dup := o.Values[k]; !dup && !o.used[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}
