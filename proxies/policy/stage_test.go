package policy

import (
	"context"
	"strings"
	"testing"

	"github.com/glance-go/glance-go/domain"
)

func TestLayerStage(t *testing.T) {
	cases := []struct {
		name    string
		caller  string
		vis     domain.Visibility
		wantErr error
		msg     string
	}{
		{"owner", "owner", domain.VisibilityPrivate, nil, ""},
		{"admin", "admin", domain.VisibilityPrivate, nil, ""},
		{"reader of the project", "reader", domain.VisibilityPrivate, domain.ErrForbidden,
			"You are not authorized to complete modify_image action."},
		{"other project sees a public image", "other", domain.VisibilityPublic, domain.ErrForbidden,
			"You are not authorized to complete modify_image action."},
		{"other project, private image", "other", domain.VisibilityPrivate, domain.ErrNotFound, "No image found with ID img"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := meta("img", "p1", tc.vis, "")
			m.Status = domain.StatusQueued
			// Wrap the image directly: the repo would already hide an
			// invisible one.
			img := Layer(mustDefault(t), personas[tc.caller]).Repo(&fakeRepo{images: []domain.Meta{m}})
			got, err := img.Get(context.Background(), "img")
			if err != nil {
				if tc.wantErr == domain.ErrNotFound {
					wantErr(t, err, tc.wantErr, tc.msg)
					return
				}
				t.Fatal(err)
			}
			err = got.Stage(context.Background(), strings.NewReader("x"), domain.DataIn{Size: 1})
			if tc.wantErr == nil {
				// The fake image below has no staging area: the call got
				// through the policy.
				wantErr(t, err, domain.ErrUnavailable, "")
				return
			}
			wantErr(t, err, tc.wantErr, tc.msg)
		})
	}
}

func mustDefault(t *testing.T) *Enforcer {
	t.Helper()
	e, err := NewDefault()
	if err != nil {
		t.Fatal(err)
	}
	return e
}
