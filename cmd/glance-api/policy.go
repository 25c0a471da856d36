package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/glance-go/glance-go/proxies/policy"
)

// policyCommand answers whether a caller with the given roles may perform an
// action, under the configured policy: a dry run for operators editing it.
func policyCommand(args []string, out io.Writer) error {
	if len(args) == 0 || args[0] != "check" {
		return errors.New("usage: glance-api policy check --roles ROLES [--project P] [--owner O] [--member M] [--visibility V] ACTION [ACTION]")
	}
	fs := flag.NewFlagSet("glance-api policy check", flag.ContinueOnError)
	var cf configFlags
	cf.register(fs)
	roles := fs.String("roles", "", "comma-separated roles of the caller")
	project := fs.String("project", "", "the caller's project")
	var t policy.Target
	fs.StringVar(&t.ProjectID, "owner", "", "the target image's owner (defaults to --project)")
	fs.StringVar(&t.MemberID, "member", "", "the target's member_id")
	fs.StringVar(&t.Visibility, "visibility", "shared", "the target image's visibility")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return errors.New("name at least one action, e.g. get_image")
	}
	if t.ProjectID == "" {
		t.ProjectID = *project
	}
	t.Owner = t.ProjectID
	cfg, err := cf.load(slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return err
	}
	enf, err := loadPolicy(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return err
	}
	var rs []string
	for _, r := range strings.Split(*roles, ",") {
		if r = strings.TrimSpace(strings.ToLower(r)); r != "" {
			rs = append(rs, r)
		}
	}
	denied := false
	for _, action := range fs.Args() {
		verdict := "allowed"
		if !policy.Check(enf, rs, *project, action, t) {
			verdict, denied = "denied", true
		}
		fmt.Fprintf(out, "%s: %s\n", action, verdict)
	}
	if denied {
		return errors.New("at least one action is denied")
	}
	return nil
}
