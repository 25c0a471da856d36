package loadmix

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// client is one of the run's clients: its own random source and counter.
type client struct {
	r    *Runner
	n    int
	rng  *rand.Rand
	made int
	ops  []string // operation names, in a fixed order
	cum  []int    // cumulative weights of ops
}

func (r *Runner) client(n int) *client {
	c := &client{r: r, n: n, rng: rand.New(rand.NewPCG(r.cfg.Seed, uint64(n)+2))}
	for op := range DefaultWeights {
		c.ops = append(c.ops, op)
	}
	slices.Sort(c.ops)
	sum := 0
	for _, op := range c.ops {
		sum += r.cfg.Weights[op]
		c.cum = append(c.cum, sum)
	}
	return c
}

// choose draws an operation by weight, turning creates into deletes when
// the pool is full and operations on images into creates when it is empty.
func (c *client) choose() string {
	total := c.cum[len(c.cum)-1]
	if total == 0 {
		return OpShow
	}
	x := c.rng.IntN(total)
	op := c.ops[0]
	for i, s := range c.cum {
		if x < s {
			op = c.ops[i]
			break
		}
	}
	n := c.r.poolSize()
	switch op {
	case OpCreate, OpUpload, OpImport:
		if n >= c.r.cfg.MaxImages {
			return OpDelete
		}
	case OpList:
	default:
		if n < c.r.cfg.Clients {
			if op == OpDelete || c.r.cfg.Weights[OpCreate] > 0 {
				return OpCreate
			}
		}
	}
	return op
}

// step runs one operation of the mix.
func (c *client) step(ctx context.Context) {
	op := c.choose()
	c.r.started(op)
	switch op {
	case OpCreate:
		if id, props := c.create(ctx, c.rng.IntN(17), c.rng.IntN(5)); id != "" {
			c.r.add(image{id: id, props: props})
		}
	case OpShow:
		c.show(ctx)
	case OpList:
		c.list(ctx)
	case OpPatch:
		c.patch(ctx)
	case OpTag:
		c.tag(ctx)
	case OpMember:
		c.member(ctx)
	case OpDelete:
		c.delete(ctx)
	case OpUpload:
		c.upload(ctx)
	case OpImport:
		c.importDirect(ctx)
	case OpDownload:
		c.download(ctx)
	}
}

// answer is a response read whole; ok is true for a success status.
type answer struct {
	status int
	body   []byte
	ok     bool
}

// call sends one request as who, reads the answer to the end and records
// it under kind: a status in want is a success, one in tolerate is
// tolerated, anything else is an error, as is a request that does not end
// within the bound. check, when not nil, looks at a successful answer.
func (c *client) call(ctx context.Context, kind string, who Identity, method, path, ctype string, body []byte,
	want, tolerate []int, check func(answer) error) answer {
	cfg := &c.r.cfg
	ctx, cancel := context.WithTimeout(ctx, cfg.Bound)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, method, cfg.Endpoint+path, rd)
	if err != nil {
		c.r.record(kind, 0, false, err)
		return answer{}
	}
	req.Header.Set("X-Identity-Status", "Confirmed")
	req.Header.Set("X-Project-Id", who.Project)
	req.Header.Set("X-User-Id", who.User)
	req.Header.Set("X-Roles", who.Roles)
	req.Header.Set("Accept", "application/json")
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	var a answer
	resp, err := c.r.hc.Do(req)
	if err == nil {
		a.status = resp.StatusCode
		a.body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	took := time.Since(start)
	switch {
	case err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		err = fmt.Errorf("%s %s: no answer within the bound of %v (%v)", method, path, cfg.Bound, err)
	case err != nil:
		err = fmt.Errorf("%s %s: %w", method, path, err)
	case slices.Contains(want, a.status):
		a.ok = true
		if check != nil {
			if cerr := check(a); cerr != nil {
				err = fmt.Errorf("%s %s: %w", method, path, cerr)
				a.ok = false
			}
		}
	case slices.Contains(tolerate, a.status):
	default:
		err = fmt.Errorf("%s %s: unexpected HTTP %d: %s", method, path, a.status, snippet(a.body))
	}
	c.r.record(kind, took, !a.ok && err == nil, err)
	return a
}

func snippet(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

func jsonBody(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only maps of strings and numbers are marshalled here
	}
	return b
}

// tagWords are the tags images get besides the run's own.
var tagWords = []string{"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"}

// imageBody is the record of a new image with props properties p00..
// and ntags tags besides cfg.Tag. With vary, which optional attributes it
// sets varies too, so that inserts of different shapes reach the database.
func (c *client) imageBody(props, ntags int, vary bool) map[string]any {
	c.made++
	body := map[string]any{
		"name":             fmt.Sprintf("lm-%d-%d", c.n, c.made),
		"disk_format":      "raw",
		"container_format": "bare",
	}
	for i := range props {
		body[fmt.Sprintf("p%02d", i)] = fmt.Sprintf("v%d", c.rng.IntN(4))
	}
	tags := []string{c.r.cfg.Tag}
	for _, i := range c.rng.Perm(len(tagWords))[:ntags] {
		tags = append(tags, tagWords[i])
	}
	body["tags"] = tags
	if !vary {
		return body
	}
	switch c.rng.IntN(4) {
	case 0:
		body["min_disk"], body["min_ram"] = c.rng.IntN(20), 64*c.rng.IntN(8)
	case 1:
		body["visibility"] = "shared"
		body["protected"] = false
	case 2:
		body["os_distro"], body["architecture"] = "debian", "x86_64"
	}
	return body
}

// create posts a new image and returns its id and number of p..
// properties ("" when it failed).
func (c *client) create(ctx context.Context, props, ntags int) (string, int) {
	var id string
	c.call(ctx, "create", c.r.cfg.Owner, http.MethodPost, "/v2/images", "application/json",
		jsonBody(c.imageBody(props, ntags, true)), []int{http.StatusCreated}, nil, func(a answer) error {
			var img struct {
				ID     string `json:"id"`
				Status string `json:"status"`
			}
			if err := json.Unmarshal(a.body, &img); err != nil || img.ID == "" || img.Status != "queued" {
				return fmt.Errorf("answer is not a new queued image: %s", snippet(a.body))
			}
			id = img.ID
			return nil
		})
	return id, props
}

func (c *client) show(ctx context.Context) {
	im, ok := c.r.pick(c.rng, false)
	if !ok {
		return
	}
	c.call(ctx, "show", c.r.cfg.Owner, http.MethodGet, "/v2/images/"+im.id, "", nil,
		[]int{http.StatusOK}, []int{http.StatusNotFound}, func(a answer) error {
			var img struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(a.body, &img); err != nil || img.ID != im.id {
				return fmt.Errorf("answer is not image %s: %s", im.id, snippet(a.body))
			}
			return nil
		})
}

// listQueries are the listings of the mix; %s is the run's tag, %w a word
// of tagWords.
var listQueries = []string{
	"limit=25",
	"limit=%n&tag=%s",
	"tag=%s&tag=%w&limit=50",
	"status=active&limit=40",
	"sort_key=name&sort_dir=asc&limit=20",
	"sort=created_at:desc,name:asc&limit=30",
	"p03=v1&limit=25",
	"visibility=shared&limit=25",
	"disk_format=raw&container_format=bare&limit=%n",
	"size_min=1&limit=25",
}

func (c *client) list(ctx context.Context) {
	q := listQueries[c.rng.IntN(len(listQueries))]
	q = strings.ReplaceAll(q, "%s", url.QueryEscape(c.r.cfg.Tag))
	q = strings.ReplaceAll(q, "%w", tagWords[c.rng.IntN(len(tagWords))])
	q = strings.ReplaceAll(q, "%n", strconv.Itoa(1+c.rng.IntN(100)))
	var next string
	c.call(ctx, "list", c.r.cfg.Owner, http.MethodGet, "/v2/images?"+q, "", nil,
		[]int{http.StatusOK}, nil, func(a answer) error {
			var page struct {
				Images []json.RawMessage `json:"images"`
				Next   string            `json:"next"`
			}
			if err := json.Unmarshal(a.body, &page); err != nil || page.Images == nil {
				return fmt.Errorf("answer is not a page of images: %s", snippet(a.body))
			}
			next = page.Next
			return nil
		})
	// A second page: its marker may be an image deleted since (400).
	if next != "" && c.rng.IntN(3) == 0 {
		c.call(ctx, "list-next", c.r.cfg.Owner, http.MethodGet, next, "", nil,
			[]int{http.StatusOK}, []int{http.StatusBadRequest}, nil)
	}
}

func (c *client) patch(ctx context.Context) {
	im, ok := c.r.pick(c.rng, false)
	if !ok {
		return
	}
	var ops []map[string]any
	if im.props > 0 {
		ops = append(ops, map[string]any{"op": "replace", "path": fmt.Sprintf("/p%02d", c.rng.IntN(im.props)),
			"value": fmt.Sprintf("r%d", c.rng.IntN(100))})
	}
	// x0..x3 come and go (add sets an existing one); y.. is added and
	// removed in the same document, so the remove always finds it.
	for range c.rng.IntN(3) {
		ops = append(ops, map[string]any{"op": "add", "path": fmt.Sprintf("/x%d", c.rng.IntN(4)), "value": "a"})
	}
	if c.rng.IntN(2) == 0 {
		y := fmt.Sprintf("/y%d", c.rng.IntN(1000))
		ops = append(ops, map[string]any{"op": "add", "path": y, "value": "b"},
			map[string]any{"op": "remove", "path": y})
	}
	switch c.rng.IntN(4) {
	case 0:
		tags := []string{c.r.cfg.Tag}
		for _, i := range c.rng.Perm(len(tagWords))[:c.rng.IntN(5)] {
			tags = append(tags, tagWords[i])
		}
		ops = append(ops, map[string]any{"op": "replace", "path": "/tags", "value": tags})
	case 1:
		ops = append(ops, map[string]any{"op": "replace", "path": "/min_ram", "value": 64 * c.rng.IntN(16)})
	case 2:
		ops = append(ops, map[string]any{"op": "replace", "path": "/name", "value": fmt.Sprintf("lm-%d-renamed", c.n)})
	}
	if len(ops) == 0 {
		ops = append(ops, map[string]any{"op": "add", "path": "/x0", "value": "c"})
	}
	c.call(ctx, "patch", c.r.cfg.Owner, http.MethodPatch, "/v2/images/"+im.id,
		"application/openstack-images-v2.1-json-patch", jsonBody(ops),
		[]int{http.StatusOK}, []int{http.StatusNotFound}, nil)
}

func (c *client) tag(ctx context.Context) {
	im, ok := c.r.pick(c.rng, false)
	if !ok {
		return
	}
	path := "/v2/images/" + im.id + "/tags/" + tagWords[c.rng.IntN(len(tagWords))]
	a := c.call(ctx, "tag-add", c.r.cfg.Owner, http.MethodPut, path, "", nil,
		[]int{http.StatusNoContent}, []int{http.StatusNotFound}, nil)
	if !a.ok {
		return
	}
	// Another client may have removed the same tag, or the image.
	c.call(ctx, "tag-delete", c.r.cfg.Owner, http.MethodDelete, path, "", nil,
		[]int{http.StatusNoContent}, []int{http.StatusNotFound}, nil)
}

// member shares an image with the second project, which accepts it and
// lists what is shared with it; then the owner lists the members and
// takes the share back. Two clients on one image see each other's share
// (409 on the add, 404 on the update or the removal).
func (c *client) member(ctx context.Context) {
	im, ok := c.r.pick(c.rng, false)
	if !ok {
		return
	}
	owner, member := c.r.cfg.Owner, c.r.cfg.Member
	base := "/v2/images/" + im.id + "/members"
	a := c.call(ctx, "member-add", owner, http.MethodPost, base, "application/json",
		jsonBody(map[string]string{"member": member.Project}),
		[]int{http.StatusOK}, []int{http.StatusNotFound, http.StatusConflict}, nil)
	if a.status == http.StatusNotFound {
		return
	}
	status := []string{"accepted", "rejected", "pending"}[c.rng.IntN(3)]
	c.call(ctx, "member-update", member, http.MethodPut, base+"/"+member.Project, "application/json",
		jsonBody(map[string]string{"status": status}), []int{http.StatusOK}, []int{http.StatusNotFound}, nil)
	c.call(ctx, "list-member", member, http.MethodGet, "/v2/images?visibility=shared&member_status=accepted&limit=20",
		"", nil, []int{http.StatusOK}, nil, nil)
	c.call(ctx, "members", owner, http.MethodGet, base, "", nil,
		[]int{http.StatusOK}, []int{http.StatusNotFound}, nil)
	if c.rng.IntN(4) > 0 {
		c.call(ctx, "member-delete", owner, http.MethodDelete, base+"/"+member.Project, "", nil,
			[]int{http.StatusNoContent}, []int{http.StatusNotFound}, nil)
	}
}

// delete removes an image of the pool. Only one client takes a given
// image, so anything but 204 is an error.
func (c *client) delete(ctx context.Context) {
	im, ok := c.r.take(c.rng)
	if !ok {
		return
	}
	c.call(ctx, "delete", c.r.cfg.Owner, http.MethodDelete, "/v2/images/"+im.id, "", nil,
		[]int{http.StatusNoContent}, nil, nil)
}

// dataSize draws the size of an upload or a stage.
func (c *client) dataSize() int {
	cfg := &c.r.cfg
	return cfg.MinData + c.rng.IntN(cfg.MaxData-cfg.MinData+1)
}

// upload creates an image and uploads its data; nobody else knows the
// image until it is active, so anything but success is an error.
func (c *client) upload(ctx context.Context) {
	id, props := c.create(ctx, c.rng.IntN(5), c.rng.IntN(3))
	if id == "" {
		return
	}
	n := c.dataSize()
	off := c.rng.IntN(len(c.r.data) - n + 1)
	a := c.call(ctx, "upload", c.r.cfg.Owner, http.MethodPut, "/v2/images/"+id+"/file", "application/octet-stream",
		c.r.data[off:off+n], []int{http.StatusNoContent}, nil, nil)
	if a.ok {
		c.r.add(image{id: id, props: props, size: int64(n)})
	}
}

// importDirect creates an image, stages data, imports it with
// glance-direct and waits, within ImportBound, until it is active.
func (c *client) importDirect(ctx context.Context) {
	id, props := c.create(ctx, c.rng.IntN(5), c.rng.IntN(3))
	if id == "" {
		return
	}
	n := c.dataSize()
	off := c.rng.IntN(len(c.r.data) - n + 1)
	owner := c.r.cfg.Owner
	if a := c.call(ctx, "stage", owner, http.MethodPut, "/v2/images/"+id+"/stage", "application/octet-stream",
		c.r.data[off:off+n], []int{http.StatusNoContent}, nil, nil); !a.ok {
		return
	}
	start := time.Now()
	if a := c.call(ctx, "import", owner, http.MethodPost, "/v2/images/"+id+"/import", "application/json",
		jsonBody(map[string]any{"method": map[string]string{"name": "glance-direct"}}),
		[]int{http.StatusAccepted}, nil, nil); !a.ok {
		return
	}
	for {
		var status string
		var size int64
		a := c.call(ctx, "import-poll", owner, http.MethodGet, "/v2/images/"+id, "", nil,
			[]int{http.StatusOK}, nil, func(a answer) error {
				var img struct {
					Status string `json:"status"`
					Size   *int64 `json:"size"`
				}
				if err := json.Unmarshal(a.body, &img); err != nil {
					return fmt.Errorf("answer is not an image: %s", snippet(a.body))
				}
				status = img.Status
				if img.Size != nil {
					size = *img.Size
				}
				switch status {
				case "uploading", "importing", "active":
					return nil
				}
				return fmt.Errorf("image %s went %s during its import", id, status)
			})
		if !a.ok {
			return
		}
		waited := time.Since(start)
		if status == "active" {
			var err error
			if size != int64(n) {
				err = fmt.Errorf("imported image %s has size %d, staged %d", id, size, n)
			}
			c.r.recordWait("import-wait", waited, err)
			if err == nil {
				c.r.add(image{id: id, props: props, size: int64(n)})
			}
			return
		}
		if waited > c.r.cfg.ImportBound {
			c.r.recordWait("import-wait", waited,
				fmt.Errorf("image %s still %s %v after its import was accepted", id, status, waited.Round(time.Millisecond)))
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// download reads the data of an image that has some and checks its
// length. The image may have been deleted since it was picked: 404, or 204
// when a delete removed the data between the read of the record and that
// of the data. A 204 is checked with shows, which must find the image gone
// within the bound (the delete marks the record after removing the data).
func (c *client) download(ctx context.Context) {
	im, ok := c.r.pick(c.rng, true)
	if !ok {
		return
	}
	owner := c.r.cfg.Owner
	a := c.call(ctx, "download", owner, http.MethodGet, "/v2/images/"+im.id+"/file", "", nil,
		[]int{http.StatusOK}, []int{http.StatusNotFound, http.StatusNoContent}, func(a answer) error {
			if int64(len(a.body)) != im.size {
				return fmt.Errorf("%d bytes, want %d", len(a.body), im.size)
			}
			return nil
		})
	if a.status != http.StatusNoContent {
		return
	}
	start := time.Now()
	for {
		g := c.call(ctx, "download-gone", owner, http.MethodGet, "/v2/images/"+im.id, "", nil,
			[]int{http.StatusNotFound}, []int{http.StatusOK}, nil)
		if g.status != http.StatusOK {
			return
		}
		if waited := time.Since(start); waited > c.r.cfg.Bound {
			c.r.recordWait("download-gone", waited, fmt.Errorf("image %s answered a download with 204 and is still there %v later",
				im.id, waited.Round(time.Millisecond)))
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}
