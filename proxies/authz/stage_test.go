package authz_test

import (
	"context"
	"errors"
	"testing"

	"github.com/glance-go/glance-go/domain"
	"github.com/glance-go/glance-go/proxies/proxytest"
)

func TestStageOwnerOnly(t *testing.T) {
	cases := []struct {
		name   string
		caller *domain.Caller
		id     string
		want   error // ErrUnavailable: the call got through to the location layer, which has no staging area
		msg    string
	}{
		{"owner", owner, private, domain.ErrUnavailable, ""},
		{"admin", admin, private, domain.ErrUnavailable, ""},
		{"member of a shared image", other, shared, domain.ErrForbidden, "You do not own this image"},
		{"read-only", readOnly, private, domain.ErrForbidden, "Read-only access"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.caller)
			img, err := f.image(context.Background(), tc.id)
			if err != nil {
				t.Fatal(err)
			}
			err = img.Stage(context.Background(), proxytest.NewReader(5, nil), domain.DataIn{Size: 5})
			if !errors.Is(err, tc.want) || (tc.msg != "" && err.Error() != tc.msg) {
				t.Fatalf("Stage: %v, want %v %q", err, tc.want, tc.msg)
			}
		})
	}
}
