package notifier_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/glance-go/glance-go/domain"
	"github.com/glance-go/glance-go/proxies"
	"github.com/glance-go/glance-go/proxies/location"
	"github.com/glance-go/glance-go/proxies/notifier"
	"github.com/glance-go/glance-go/proxies/proxytest"
)

const imgID = "1b2c3d4e-5f60-4718-8293-a4b5c6d7e8f9"

var caller = &domain.Caller{ProjectID: "p1", UserID: "u1", Roles: []string{"member"}}

var isoRe = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)

func seed(mod func(*domain.Meta)) domain.Meta {
	at := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	m := domain.Meta{
		ID: imgID, Name: domain.Ptr("cirros"), Status: domain.StatusQueued, Visibility: domain.VisibilityPublic,
		Owner: domain.Ptr("p1"), DiskFormat: domain.Ptr("raw"), ContainerFormat: domain.Ptr("bare"),
		CreatedAt: at, UpdatedAt: at, MinRAM: 64, MinDisk: 1,
		Properties: map[string]string{"os_distro": "cirros"}, Tags: []string{"a", "b"},
	}
	if mod != nil {
		mod(&m)
	}
	return m
}

type fixture struct {
	db     *proxytest.DB
	drv    *proxytest.Driver
	sink   *proxytest.Sink
	repo   domain.Repo
	fac    domain.Factory
	layers []proxies.Layer
	log    *bytes.Buffer
}

func newFixture(opts notifier.Options, seeds ...domain.Meta) *fixture {
	f := &fixture{db: proxytest.NewDB(), drv: proxytest.NewDriver(), sink: &proxytest.Sink{}, log: &bytes.Buffer{}}
	for _, m := range seeds {
		f.db.Put(m)
	}
	opts.Logger = slog.New(slog.NewTextHandler(f.log, nil))
	inner := f.db.Repo(caller)
	f.layers = []proxies.Layer{
		location.Layer(proxytest.Stores{D: f.drv}, inner, location.Options{}),
		notifier.Layer(f.sink, opts, caller),
	}
	f.repo, f.fac = proxies.Stack(inner, domain.CoreFactory{}, f.layers...)
	return f
}

func (f *fixture) get(t *testing.T) domain.Image {
	t.Helper()
	img, err := f.repo.Get(context.Background(), imgID)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func payload(t *testing.T, ev notifier.Event) map[string]any {
	t.Helper()
	p, ok := ev.Payload.(map[string]any)
	if !ok {
		t.Fatalf("%s payload is %T, want a map", ev.EventType, ev.Payload)
	}
	return p
}

func TestImagePayload(t *testing.T) {
	m := seed(func(m *domain.Meta) {
		m.Locations = []domain.Location{{URL: "swift+https://user:secret@host/c/o", Status: "active"}}
		m.Size = domain.Ptr(int64(42))
	})
	p := notifier.ImagePayload(m)
	want := map[string]any{
		"id": imgID, "name": "cirros", "status": "queued",
		"created_at": "2024-05-06T07:08:09Z", "updated_at": "2024-05-06T07:08:09Z",
		"min_disk": 1, "min_ram": 64, "protected": false, "checksum": nil, "owner": "p1",
		"disk_format": "raw", "container_format": "bare", "size": int64(42), "virtual_size": nil,
		"is_public": true, "visibility": "public", "deleted": false, "deleted_at": nil,
	}
	for k, v := range want {
		if p[k] != v {
			t.Errorf("payload[%s] = %#v, want %#v", k, p[k], v)
		}
	}
	if props, _ := p["properties"].(map[string]any); len(props) != 1 || props["os_distro"] != "cirros" {
		t.Errorf("properties = %#v", p["properties"])
	}
	if tags, _ := p["tags"].([]string); !slices.Equal(tags, []string{"a", "b"}) {
		t.Errorf("tags = %#v", p["tags"])
	}
	wantKeys := 20
	if len(p) != wantKeys {
		t.Errorf("payload has %d keys, want %d: %v", len(p), wantKeys, p)
	}
	b, _ := json.Marshal(p)
	if strings.Contains(string(b), "secret") || strings.Contains(string(b), "locations") {
		t.Errorf("payload leaks locations: %s", b)
	}
}

func TestRepoEvents(t *testing.T) {
	tests := []struct {
		name      string
		op        func(context.Context, *fixture) error
		wantTypes []string
		check     func(*testing.T, map[string]any)
	}{
		{name: "create", op: func(ctx context.Context, f *fixture) error {
			img, err := f.fac.NewImage(ctx, domain.Meta{Name: domain.Ptr("new"), Owner: domain.Ptr("p1")})
			if err != nil {
				return err
			}
			return f.repo.Add(ctx, img)
		}, wantTypes: []string{"image.create"}, check: func(t *testing.T, p map[string]any) {
			if p["name"] != "new" || p["status"] != "queued" || p["deleted"] != false {
				t.Errorf("payload = %v", p)
			}
		}},
		{name: "create with a taken id sends nothing", op: func(ctx context.Context, f *fixture) error {
			img, err := f.fac.NewImage(ctx, domain.Meta{ID: imgID})
			if err != nil {
				return err
			}
			return f.repo.Add(ctx, img)
		}},
		{name: "update", op: func(ctx context.Context, f *fixture) error {
			img, err := f.repo.Get(ctx, imgID)
			if err != nil {
				return err
			}
			if err := img.Update(func(m *domain.Meta) error { m.Name = domain.Ptr("renamed"); return nil }); err != nil {
				return err
			}
			return f.repo.Save(ctx, img, "")
		}, wantTypes: []string{"image.update"}, check: func(t *testing.T, p map[string]any) {
			if p["name"] != "renamed" {
				t.Errorf("name = %v, want renamed", p["name"])
			}
		}},
		{name: "delete", op: func(ctx context.Context, f *fixture) error {
			img, err := f.repo.Get(ctx, imgID)
			if err != nil {
				return err
			}
			if err := img.Delete(ctx); err != nil {
				return err
			}
			return f.repo.Remove(ctx, img)
		}, wantTypes: []string{"image.delete"}, check: func(t *testing.T, p map[string]any) {
			at, _ := p["deleted_at"].(string)
			if p["deleted"] != true || !isoRe.MatchString(at) {
				t.Errorf("deleted = %v, deleted_at = %v", p["deleted"], p["deleted_at"])
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(notifier.Options{}, seed(nil))
			err := tc.op(context.Background(), f)
			if tc.wantTypes != nil && err != nil {
				t.Fatal(err)
			}
			if got := f.sink.Types(); !slices.Equal(got, tc.wantTypes) {
				t.Fatalf("events = %v, want %v", got, tc.wantTypes)
			}
			if len(tc.wantTypes) == 0 {
				return
			}
			ev := f.sink.Events()[0]
			if ev.PublisherID != notifier.DefaultPublisherID || ev.Priority != notifier.PriorityInfo ||
				ev.MessageID == "" || ev.Timestamp.IsZero() {
				t.Errorf("envelope = %+v", ev)
			}
			if tc.check != nil {
				tc.check(t, payload(t, ev))
			}
		})
	}
}

func TestSetDataEvents(t *testing.T) {
	tests := []struct {
		name      string
		seed      func(*domain.Meta)
		fault     func(*proxytest.Driver)
		wantErr   bool
		wantTypes []string
		wantMsg   string
	}{
		{name: "success", wantTypes: []string{"image.update", "image.prepare", "image.upload", "image.activate", "image.update"}},
		{name: "store full", fault: func(d *proxytest.Driver) { d.PutFailsAfter = 10 }, wantErr: true,
			wantTypes: []string{"image.update", "image.prepare", "image.upload:ERROR", "image.update"}, wantMsg: "Image storage media is full: "},
		{name: "store failure", fault: func(d *proxytest.Driver) { d.PutFailsAfter, d.PutErr = 10, errors.New("EIO") },
			wantErr: true, wantTypes: []string{"image.update", "image.prepare", "image.upload:ERROR", "image.update"},
			wantMsg: "Failed to upload image data for image " + imgID + " due to internal error: "},
		{name: "not queued", seed: func(m *domain.Meta) { m.Status = domain.StatusActive }, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(notifier.Options{}, seed(tc.seed))
			if tc.fault != nil {
				tc.fault(f.drv)
			}
			err := f.get(t).SetData(context.Background(), proxytest.NewReader(1000, nil), domain.DataIn{Size: 1000})
			if (err != nil) != tc.wantErr {
				t.Fatalf("SetData error = %v, want error %v", err, tc.wantErr)
			}
			evs := f.sink.Events()
			if got := f.sink.Types(); !slices.Equal(got, tc.wantTypes) {
				t.Fatalf("events = %v, want %v", got, tc.wantTypes)
			}
			if len(evs) == 0 {
				return
			}
			// Glance stores the image as saving first, and again at the end.
			if st := payload(t, evs[0])["status"]; st != "saving" {
				t.Errorf("first update status = %v, want saving", st)
			}
			last := payload(t, evs[len(evs)-1])
			if want := map[bool]string{true: "queued", false: "active"}[tc.wantErr]; last["status"] != want {
				t.Errorf("last update status = %v, want %s", last["status"], want)
			}
			evs = evs[1:]
			prep := payload(t, evs[0])
			if prep["status"] != "queued" || prep["size"] != nil {
				t.Errorf("prepare payload: status %v size %v, want queued and null", prep["status"], prep["size"])
			}
			if l, ok := prep["os_glance_importing_to_stores"].([]string); !ok || len(l) != 0 {
				t.Errorf("prepare os_glance_importing_to_stores = %#v, want []", prep["os_glance_importing_to_stores"])
			}
			if tc.wantErr {
				msg, ok := evs[1].Payload.(string)
				if !ok || !strings.HasPrefix(msg, tc.wantMsg) {
					t.Errorf("upload error payload = %#v, want a message starting %q", evs[1].Payload, tc.wantMsg)
				}
				return
			}
			up := payload(t, evs[1])
			if up["status"] != "active" || up["size"] != int64(1000) || up["checksum"] == nil {
				t.Errorf("upload payload: status %v size %v checksum %v", up["status"], up["size"], up["checksum"])
			}
			if _, ok := up["os_glance_failed_import"]; !ok {
				t.Error("upload payload lacks os_glance_failed_import")
			}
			if act := payload(t, evs[2]); act["status"] != "active" {
				t.Errorf("activate status = %v", act["status"])
			}
		})
	}
}

func TestSendEvent(t *testing.T) {
	tests := []struct {
		name     string
		off, n   int64
		read     int64
		wantSent int64
		wantPrio string
	}{
		{name: "whole image", n: -1, read: -1, wantSent: 100, wantPrio: notifier.PriorityInfo},
		{name: "range", off: 10, n: 20, read: -1, wantSent: 20, wantPrio: notifier.PriorityInfo},
		{name: "client stops early", n: -1, read: 30, wantSent: 30, wantPrio: notifier.PriorityError},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(notifier.Options{}, seed(nil))
			if err := f.get(t).SetData(context.Background(), proxytest.NewReader(100, nil), domain.DataIn{Size: 100}); err != nil {
				t.Fatal(err)
			}
			f.sink.Reset()
			rc, err := f.get(t).Data(context.Background(), tc.off, tc.n)
			if err != nil {
				t.Fatal(err)
			}
			if tc.read < 0 {
				io.Copy(io.Discard, rc)
			} else {
				io.CopyN(io.Discard, rc, tc.read)
			}
			if len(f.sink.Events()) != 0 {
				t.Fatal("image.send before Close")
			}
			rc.Close()
			rc.Close()
			evs := f.sink.Events()
			if len(evs) != 1 || evs[0].EventType != "image.send" {
				t.Fatalf("events = %v, want one image.send", f.sink.Types())
			}
			p := payload(t, evs[0])
			want := map[string]any{"bytes_sent": tc.wantSent, "image_id": imgID, "owner_id": "p1",
				"receiver_tenant_id": "p1", "receiver_user_id": "u1"}
			for k, v := range want {
				if p[k] != v {
					t.Errorf("payload[%s] = %#v, want %#v", k, p[k], v)
				}
			}
			if evs[0].Priority != tc.wantPrio {
				t.Errorf("priority = %s, want %s", evs[0].Priority, tc.wantPrio)
			}
		})
	}
}

func TestMemberEvents(t *testing.T) {
	f := newFixture(notifier.Options{}, seed(func(m *domain.Meta) { m.Visibility = domain.VisibilityShared }))
	ctx := context.Background()
	img := f.get(t)
	mr := proxies.StackMembers(img, f.db.Members(caller, imgID), f.layers...)
	mb := domain.NewMember(imgID, "p2")
	if err := mr.Add(ctx, mb); err != nil {
		t.Fatal(err)
	}
	if err := mr.Add(ctx, mb); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("duplicate Add = %v", err)
	}
	mb.Status = domain.MemberAccepted
	if err := mr.Save(ctx, mb); err != nil {
		t.Fatal(err)
	}
	if err := mr.Remove(ctx, mb); err != nil {
		t.Fatal(err)
	}
	want := []string{"image.member.create", "image.member.update", "image.member.delete"}
	if got := f.sink.Types(); !slices.Equal(got, want) {
		t.Fatalf("events = %v, want %v", got, want)
	}
	evs := f.sink.Events()
	up := payload(t, evs[1])
	if up["image_id"] != imgID || up["member_id"] != "p2" || up["status"] != "accepted" || up["deleted"] != false {
		t.Errorf("update payload = %v", up)
	}
	if at, _ := up["created_at"].(string); !isoRe.MatchString(at) {
		t.Errorf("created_at = %v", up["created_at"])
	}
	if del := payload(t, evs[2]); del["deleted"] != true || del["deleted_at"] == nil {
		t.Errorf("delete payload = %v", del)
	}
}

func TestDisabled(t *testing.T) {
	all := func(ctx context.Context, f *fixture) {
		img, _ := f.repo.Get(ctx, imgID)
		img.Update(func(m *domain.Meta) error { m.Name = domain.Ptr("x"); return nil })
		f.repo.Save(ctx, img, "")
		mr := proxies.StackMembers(img, f.db.Members(caller, imgID), f.layers...)
		mr.Add(ctx, domain.NewMember(imgID, "p2"))
		img.SetData(ctx, proxytest.NewReader(10, nil), domain.DataIn{Size: 10})
	}
	tests := []struct {
		disabled []string
		want     []string
	}{
		{nil, []string{"image.update", "image.member.create", "image.update", "image.prepare", "image.upload", "image.activate", "image.update"}},
		{[]string{"image.update"}, []string{"image.member.create", "image.prepare", "image.upload", "image.activate"}},
		{[]string{"image"}, nil},
		// Only the part before the first dot is a group, as in Glance.
		{[]string{"image.member"}, []string{"image.update", "image.member.create", "image.update", "image.prepare", "image.upload", "image.activate", "image.update"}},
		{[]string{"task", "image.upload", "image.prepare"}, []string{"image.update", "image.member.create", "image.update", "image.activate", "image.update"}},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.disabled, ","), func(t *testing.T) {
			f := newFixture(notifier.Options{Disabled: tc.disabled},
				seed(func(m *domain.Meta) { m.Visibility = domain.VisibilityShared }))
			all(context.Background(), f)
			if got := f.sink.Types(); !slices.Equal(got, tc.want) {
				t.Errorf("events = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestSinkErrorIsLogged(t *testing.T) {
	f := newFixture(notifier.Options{PublisherID: "image.host1"}, seed(nil))
	f.sink.Err = errors.New("broker down")
	ctx := context.Background()
	img := f.get(t)
	if err := img.Update(func(m *domain.Meta) error { m.Name = domain.Ptr("y"); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := f.repo.Save(ctx, img, ""); err != nil {
		t.Fatalf("Save = %v, want success despite the sink", err)
	}
	if !strings.Contains(f.log.String(), "broker down") {
		t.Errorf("log = %q, want the sink error", f.log.String())
	}
	if evs := f.sink.Events(); len(evs) != 1 || evs[0].PublisherID != "image.host1" {
		t.Errorf("events = %+v", evs)
	}
}

func TestLogSink(t *testing.T) {
	var buf bytes.Buffer
	s := notifier.NewLogSink(&buf)
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.Emit(context.Background(), notifier.Event{
				EventType: "image.update", Priority: "INFO", PublisherID: "image.localhost", MessageID: "m",
				Timestamp: time.Date(2024, 1, 2, 3, 4, 5, 6000, time.UTC), Payload: map[string]any{"id": "x"},
			})
		}()
	}
	wg.Wait()
	sc := bufio.NewScanner(&buf)
	lines := 0
	for sc.Scan() {
		lines++
		var got map[string]any
		if err := json.Unmarshal(sc.Bytes(), &got); err != nil {
			t.Fatalf("line %d is not JSON: %v: %s", lines, err, sc.Text())
		}
		if got["event_type"] != "image.update" || got["priority"] != "INFO" || got["publisher_id"] != "image.localhost" ||
			got["message_id"] != "m" || got["timestamp"] != "2024-01-02 03:04:05.000006" {
			t.Errorf("envelope = %v", got)
		}
		if p, _ := got["payload"].(map[string]any); p["id"] != "x" {
			t.Errorf("payload = %v", got["payload"])
		}
	}
	if lines != 20 {
		t.Errorf("%d lines, want 20", lines)
	}
}

func TestTimestamp(t *testing.T) {
	for _, tc := range []struct {
		t    time.Time
		want string
	}{
		{time.Date(2024, 1, 2, 3, 4, 5, 6000, time.UTC), "2024-01-02 03:04:05.000006"},
		{time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC), "2024-01-02 03:04:05"},
		{time.Date(2024, 1, 2, 3, 4, 5, 999, time.UTC), "2024-01-02 03:04:05"},
		{time.Date(2024, 1, 2, 4, 4, 5, 123456789, time.FixedZone("x", 3600)), "2024-01-02 03:04:05.123456"},
	} {
		if got := notifier.Timestamp(tc.t); got != tc.want {
			t.Errorf("Timestamp(%v) = %q, want %q", tc.t, got, tc.want)
		}
	}
}

type errSink struct {
	got []string
	err error
}

func (s *errSink) Emit(_ context.Context, ev notifier.Event) error {
	s.got = append(s.got, ev.EventType)
	return s.err
}

func TestFanout(t *testing.T) {
	a, b := &errSink{err: errors.New("a failed")}, &errSink{}
	err := notifier.Fanout(a, b).Emit(context.Background(), notifier.Event{EventType: "image.create"})
	if err == nil || err.Error() != "a failed" {
		t.Errorf("error %v, want a's", err)
	}
	if len(a.got) != 1 || len(b.got) != 1 {
		t.Errorf("a got %v, b got %v: a failing sink kept the event from the next", a.got, b.got)
	}
	if s := notifier.Fanout(b); s != notifier.Sink(b) {
		t.Error("Fanout of one sink is not that sink")
	}
}
