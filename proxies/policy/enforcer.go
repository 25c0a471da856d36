// Package policy enforces Glance's named policies (get_image, modify_image,
// add_member, ...) with casbin, and is the policy ring of the gateway's onion.
// It mirrors glance/api/policy.py (the enforcer and the image target) and
// glance/api/v2/policy.py (which policy each call checks, and when a refusal
// is reported as 404 rather than 403).
//
// The model (policy.conf) reads a request as (subject, target, action) and a
// policy line as (action, rule); the rule is an expression over the subject
// and the target. Lines with the same action are alternatives. The default
// policy (etc/policy.csv) spells out Glance's secure-RBAC defaults.
package policy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"
	"github.com/casbin/casbin/v2/persist"

	glancego "github.com/glance-go/glance-go"
	"github.com/glance-go/glance-go/domain"
)

// Subject is the caller as rules see it (r.sub).
type Subject struct {
	Roles     []string // lower-cased
	ProjectID string
	UserID    string
	// IsAdmin is true when the deployment made the caller admin outright
	// (domain.Caller.IsAdmin), whatever its roles.
	IsAdmin bool
}

// Target is what a call acts on, as rules see it (r.obj). For images,
// ProjectID and Owner are the image's owner and MemberID is the caller's
// project when the image is shared with it (Glance's image target). For
// metadef calls, ProjectID is the namespace's owner.
type Target struct {
	ProjectID  string
	MemberID   string
	Visibility string
	Owner      string
}

// ImageTarget returns the policy target of an image.
func ImageTarget(m domain.Meta) Target {
	owner := ""
	if m.Owner != nil {
		owner = *m.Owner
	}
	return Target{ProjectID: owner, Owner: owner, MemberID: m.Member, Visibility: string(m.Visibility)}
}

// maxCached bounds the decisions a policy snapshot remembers.
const maxCached = 1 << 16

// snapshot is one loaded model and policy. It is never changed once loaded;
// a reload builds a new one and swaps it in.
type snapshot struct {
	ce *casbin.Enforcer
	// byAct holds, when the model is the standard one, an enforcer per
	// action with only that action's lines: the same decisions without
	// walking every line of the policy.
	byAct   map[string]*casbin.Enforcer
	actions []string // every policy name, sorted
	stamps  []stamp  // of the model and policy files, when read from files
	cache   atomic.Pointer[sync.Map]
	cached  atomic.Int64
	log     *slog.Logger
}

// Enforcer decides Glance policies. It is safe for concurrent use; a reload
// replaces the whole policy at once.
type Enforcer struct {
	modelPath, policyPath string
	log                   *slog.Logger
	cur                   atomic.Pointer[snapshot]
	reloadMu              sync.Mutex
}

// New loads the model and the policy from files. It fails when either file
// is missing or broken.
func New(modelPath, policyPath string, log *slog.Logger) (*Enforcer, error) {
	if log == nil {
		log = slog.Default()
	}
	e := &Enforcer{modelPath: modelPath, policyPath: policyPath, log: log}
	s, err := e.loadFiles()
	if err != nil {
		return nil, err
	}
	e.cur.Store(s)
	return e, nil
}

// NewDefault returns an enforcer with the built-in model and default policy.
func NewDefault() (*Enforcer, error) {
	e := &Enforcer{log: slog.Default()}
	s, err := load(string(glancego.DefaultPolicyModel), string(glancego.DefaultPolicy), "default policy", e.log)
	if err != nil {
		return nil, err
	}
	e.cur.Store(s)
	return e, nil
}

func (e *Enforcer) loadFiles() (*snapshot, error) {
	// Stamp the files before reading them: a write that races the read is
	// then seen as a further change.
	stamps := []stamp{stampOf(e.modelPath), stampOf(e.policyPath)}
	mt, err := os.ReadFile(e.modelPath)
	if err != nil {
		return nil, fmt.Errorf("policy model: %w", err)
	}
	pt, err := os.ReadFile(e.policyPath)
	if err != nil {
		return nil, fmt.Errorf("policy file: %w", err)
	}
	s, err := load(string(mt), string(pt), e.policyPath, e.log)
	if err != nil {
		return nil, err
	}
	s.stamps = stamps
	return s, nil
}

// Reload reads both files again. On error the policy in force is kept.
func (e *Enforcer) Reload() error {
	if e.modelPath == "" {
		return nil
	}
	e.reloadMu.Lock()
	defer e.reloadMu.Unlock()
	s, err := e.loadFiles()
	if err != nil {
		return err
	}
	e.cur.Store(s)
	return nil
}

// Actions returns every policy name the policy in force defines, sorted.
func (e *Enforcer) Actions() []string { return slices.Clone(e.cur.Load().actions) }

// Allowed reports whether the caller may do action on t.
func (e *Enforcer) Allowed(c *domain.Caller, action string, t Target) bool {
	s := newSubject(c)
	return e.cur.Load().allowed(&s, s.key(), action, t)
}

// IsAdmin reports whether the context_is_admin policy holds for the caller.
func (e *Enforcer) IsAdmin(c *domain.Caller) bool {
	return e.Allowed(c, "context_is_admin", Target{})
}

// Check reports whether a caller with these roles in this project may do
// action on t. It backs `glance-api policy check`.
func Check(e *Enforcer, roles []string, project string, action string, t Target) bool {
	c := &domain.Caller{ProjectID: project}
	for _, r := range roles {
		c.Roles = append(c.Roles, strings.ToLower(strings.TrimSpace(r)))
	}
	return e.Allowed(c, action, t)
}

func newSubject(c *domain.Caller) Subject {
	if c == nil {
		return Subject{}
	}
	return Subject{Roles: c.Roles, ProjectID: c.ProjectID, UserID: c.UserID, IsAdmin: c.IsAdmin}
}

// key identifies the subject in the decision cache.
func (s *Subject) key() string {
	var b strings.Builder
	b.WriteString(s.ProjectID)
	b.WriteByte(0)
	b.WriteString(s.UserID)
	b.WriteByte(0)
	if s.IsAdmin {
		b.WriteByte('A')
	}
	for _, r := range s.Roles {
		b.WriteByte(0)
		b.WriteString(r)
	}
	return b.String()
}

// allowed decides one request. Rules are pure functions of the subject, the
// target and the action, so decisions are remembered until the next reload.
func (s *snapshot) allowed(sub *Subject, subKey, action string, t Target) bool {
	key := action + "\x01" + t.ProjectID + "\x00" + t.MemberID + "\x00" + t.Visibility + "\x00" + t.Owner + "\x01" + subKey
	cache := s.cache.Load()
	if v, ok := cache.Load(key); ok {
		return v.(bool)
	}
	ok, err := s.enforce(sub, t, action)
	if err != nil {
		s.log.Error("policy check failed; denying", "action", action, "error", err)
		return false
	}
	if s.cached.Add(1) > maxCached {
		s.cache.Store(new(sync.Map))
		s.cached.Store(0)
	}
	cache.Store(key, ok)
	return ok
}

func (s *snapshot) enforce(sub *Subject, t Target, action string) (bool, error) {
	if s.byAct != nil {
		pe, ok := s.byAct[action]
		if !ok {
			return false, nil
		}
		return pe.Enforce(sub, &t, action)
	}
	return s.ce.Enforce(sub, &t, action)
}

// standardModel reports whether the model reads requests and lines as the
// shipped policy.conf does, so that the policy may be split by action.
func standardModel(m model.Model) bool {
	norm := func(sec, key string) string {
		a := m[sec][key]
		if a == nil {
			return ""
		}
		return strings.Join(strings.Fields(a.Value), " ")
	}
	return len(m["m"]) == 1 && len(m["p"]) == 1 && len(m["r"]) == 1 && len(m["e"]) == 1 && m["g"] == nil &&
		norm("r", "r") == "sub, obj, act" && norm("p", "p") == "act, rule" &&
		norm("e", "e") == "some(where (p_eft == allow))" && norm("m", "m") == "r_act == p_act && eval(p_rule)"
}

// splitByAction builds one enforcer per action whose matcher is that
// action's rules joined with ||. Under the standard model this decides
// exactly as the whole policy does (a request is allowed when any line of
// its action holds), but casbin compiles each matcher once instead of
// parsing the rule of every line on every request. It returns false, and
// leaves the snapshot on the general path, when a rule has a character the
// matcher syntax treats differently (# starts a comment there).
func (s *snapshot) splitByAction(lines [][]string) (bool, error) {
	groups := map[string][]string{}
	for _, l := range lines {
		if strings.ContainsAny(l[1], "#\\\n") {
			return false, nil
		}
		groups[l[0]] = append(groups[l[0]], "("+l[1]+")")
	}
	byAct := make(map[string]*casbin.Enforcer, len(groups))
	for act, rules := range groups {
		m, err := model.NewModelFromString("[request_definition]\nr = sub, obj, act\n" +
			"[policy_definition]\np = act, rule\n" +
			"[policy_effect]\ne = some(where (p.eft == allow))\n" +
			"[matchers]\nm = " + strings.Join(rules, " || ") + "\n")
		if err != nil {
			return false, fmt.Errorf("%s: %w", act, err)
		}
		pe, err := casbin.NewEnforcer(m)
		if err != nil {
			return false, fmt.Errorf("%s: %w", act, err)
		}
		s.addFunctions(pe)
		byAct[act] = pe
	}
	s.byAct = byAct
	return true, nil
}

func (s *snapshot) addFunctions(ce *casbin.Enforcer) {
	ce.AddFunction("hasRole", hasRole)
	ce.AddFunction("inProject", inProject)
	ce.AddFunction("rule", s.ruleFunc)
}

// ruleRef finds references to other policies inside a rule.
var ruleRef = regexp.MustCompile(`\brule\s*\(`)

// ruleCall is the one accepted form of a reference: rule(r.sub, r.obj, 'name').
var ruleCall = regexp.MustCompile(`\brule\s*\(\s*r\.sub\s*,\s*r\.obj\s*,\s*'([^']*)'\s*\)`)

// textAdapter feeds casbin the lines of a policy file and reports the line
// of the first one that does not parse. It never writes.
type textAdapter struct {
	name, text string
}

var _ persist.Adapter = textAdapter{}

func (a textAdapter) LoadPolicy(m model.Model) error {
	for i, line := range strings.Split(a.text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !strings.HasPrefix(line, "p,") {
			return fmt.Errorf("%s:%d: a policy line starts with \"p,\"", a.name, i+1)
		}
		if err := persist.LoadPolicyLine(line, m); err != nil {
			return fmt.Errorf("%s:%d: %w", a.name, i+1, err)
		}
	}
	return nil
}

var errReadOnly = errors.New("the policy file is edited by hand, not through the enforcer")

func (textAdapter) SavePolicy(model.Model) error                              { return errReadOnly }
func (textAdapter) AddPolicy(string, string, []string) error                  { return errReadOnly }
func (textAdapter) RemovePolicy(string, string, []string) error               { return errReadOnly }
func (textAdapter) RemoveFilteredPolicy(string, string, int, ...string) error { return errReadOnly }

// load builds and checks a snapshot from the model and policy texts.
func load(modelText, policyText, name string, log *slog.Logger) (*snapshot, error) {
	m, err := model.NewModelFromString(modelText)
	if err != nil {
		return nil, fmt.Errorf("policy model: %w", err)
	}
	if matcher := m["m"]["m"]; matcher != nil && ruleRef.MatchString(matcher.Value) {
		return nil, errors.New("policy model: the matcher may not call rule()")
	}
	ce, err := casbin.NewEnforcer(m, textAdapter{name: name, text: policyText})
	if err != nil {
		return nil, err
	}
	s := &snapshot{ce: ce, log: log}
	s.cache.Store(new(sync.Map))
	s.addFunctions(ce)

	lines, err := ce.GetPolicy()
	if err != nil {
		return nil, err
	}
	refs := map[string][]string{}
	for _, l := range lines {
		if len(l) != 2 {
			return nil, fmt.Errorf("%s: policy line %q: want an action and a rule", name, strings.Join(l, ", "))
		}
		act, rule := l[0], l[1]
		if act == "" || strings.TrimSpace(rule) == "" {
			return nil, fmt.Errorf("%s: policy line %q: empty action or rule", name, strings.Join(l, ", "))
		}
		if _, ok := refs[act]; !ok {
			refs[act] = nil
		}
		calls := ruleCall.FindAllStringSubmatch(rule, -1)
		if len(calls) != len(ruleRef.FindAllString(rule, -1)) {
			return nil, fmt.Errorf("%s: %s: write references as rule(r.sub, r.obj, 'name'): %s", name, act, rule)
		}
		for _, c := range calls {
			refs[act] = append(refs[act], c[1])
		}
	}
	for act, to := range refs {
		for _, t := range to {
			if _, ok := refs[t]; !ok {
				return nil, fmt.Errorf("%s: %s refers to rule '%s', which is not defined", name, act, t)
			}
		}
	}
	if cyc := findCycle(refs); cyc != nil {
		return nil, fmt.Errorf("%s: rules refer to each other in a loop: %s", name, strings.Join(cyc, " -> "))
	}
	for a := range refs {
		s.actions = append(s.actions, a)
	}
	slices.Sort(s.actions)
	if standardModel(m) {
		if _, err := s.splitByAction(lines); err != nil {
			return nil, err
		}
	}

	// Evaluate every rule once, alone and through the model, so that a typo
	// (an unknown function, a field that does not exist, a result that is
	// not true or false) is refused now rather than at request time.
	probes := []Subject{{}, {Roles: []string{"admin", "member", "reader", "service"}, ProjectID: "p", UserID: "u", IsAdmin: true}}
	probeTarget := Target{ProjectID: "p", MemberID: "m", Visibility: "shared", Owner: "p"}
	for _, l := range lines {
		for i := range probes {
			if _, err := ce.EnforceWithMatcher(l[1], &probes[i], &probeTarget, l[0]); err != nil {
				return nil, fmt.Errorf("%s: rule for %s does not evaluate: %v: %s", name, l[0], err, l[1])
			}
		}
	}
	for _, a := range s.actions {
		for i := range probes {
			if _, err := s.enforce(&probes[i], probeTarget, a); err != nil {
				return nil, fmt.Errorf("%s: policy %s does not evaluate: %v", name, a, err)
			}
		}
	}
	return s, nil
}

// findCycle returns a loop in the reference graph, or nil.
func findCycle(refs map[string][]string) []string {
	const (
		unseen = iota
		open
		done
	)
	state := map[string]int{}
	var stack []string
	var visit func(string) []string
	visit = func(n string) []string {
		state[n] = open
		stack = append(stack, n)
		for _, t := range refs[n] {
			switch state[t] {
			case open:
				i := slices.Index(stack, t)
				return append(slices.Clone(stack[i:]), t)
			case unseen:
				if c := visit(t); c != nil {
					return c
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[n] = done
		return nil
	}
	names := make([]string, 0, len(refs))
	for n := range refs {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if state[n] == unseen {
			if c := visit(n); c != nil {
				return c
			}
		}
	}
	return nil
}

func subjectArg(v any) (*Subject, error) {
	switch s := v.(type) {
	case *Subject:
		return s, nil
	case Subject:
		return &s, nil
	}
	return nil, fmt.Errorf("want r.sub, got %T", v)
}

// hasRole(r.sub, 'role'): the caller holds the role, in any case.
func hasRole(args ...any) (any, error) {
	if len(args) != 2 {
		return nil, fmt.Errorf("hasRole takes 2 arguments, got %d", len(args))
	}
	s, err := subjectArg(args[0])
	if err != nil {
		return nil, fmt.Errorf("hasRole: %w", err)
	}
	role, ok := args[1].(string)
	if !ok {
		return nil, fmt.Errorf("hasRole: the role must be a string, got %T", args[1])
	}
	for _, r := range s.Roles {
		if strings.EqualFold(r, role) {
			return true, nil
		}
	}
	return false, nil
}

// inProject(r.sub, value): the caller's project is value; an empty project
// or value never matches.
func inProject(args ...any) (any, error) {
	if len(args) != 2 {
		return nil, fmt.Errorf("inProject takes 2 arguments, got %d", len(args))
	}
	s, err := subjectArg(args[0])
	if err != nil {
		return nil, fmt.Errorf("inProject: %w", err)
	}
	p, ok := args[1].(string)
	if !ok {
		return nil, fmt.Errorf("inProject: the project must be a string, got %T", args[1])
	}
	return s.ProjectID != "" && s.ProjectID == p, nil
}

// ruleFunc is rule(r.sub, r.obj, 'name'): the named policy holds. Load has
// checked that every reference names a policy and that none loops.
func (s *snapshot) ruleFunc(args ...any) (any, error) {
	if len(args) != 3 {
		return nil, fmt.Errorf("rule takes 3 arguments, got %d", len(args))
	}
	sub, err := subjectArg(args[0])
	if err != nil {
		return nil, fmt.Errorf("rule: %w", err)
	}
	var t Target
	switch v := args[1].(type) {
	case *Target:
		t = *v
	case Target:
		t = v
	default:
		return nil, fmt.Errorf("rule: want r.obj, got %T", args[1])
	}
	name, ok := args[2].(string)
	if !ok {
		return nil, fmt.Errorf("rule: the name must be a string, got %T", args[2])
	}
	return s.allowed(sub, sub.key(), name, t), nil
}

// Watch reloads the policy when the model or the policy file changes, until
// ctx ends; run it in its own goroutine. A change that does not load is
// logged and ignored: the last good policy stays in force. With the built-in
// policy there is nothing to watch and Watch returns at once. It returns nil
// when ctx ends.
func (e *Enforcer) Watch(ctx context.Context) error {
	if e.modelPath == "" {
		return nil
	}
	watch(ctx, []string{e.modelPath, e.policyPath}, e.cur.Load().stamps, func() {
		if err := e.Reload(); err != nil {
			e.log.Error("policy change refused; the previous policy stays in force", "error", err)
			return
		}
		e.log.Info("policy reloaded", "model", e.modelPath, "policy", e.policyPath)
	})
	return nil
}
