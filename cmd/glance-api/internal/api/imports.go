package api

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/glance-go/glance-go/domain"
)

// Importer runs interoperable imports and serves their tasks; package
// gateway/imports implements it.
type Importer interface {
	// Import checks an import request for an image and starts the import;
	// it returns once the import is queued. An error with a StageHost
	// method asks for the request to be handed to that API worker.
	Import(ctx context.Context, c *domain.Caller, imageID string, req domain.ImportRequest) error
	// ImageTasks returns the tasks of an image the caller may get.
	ImageTasks(ctx context.Context, c *domain.Caller, imageID string) ([]domain.Task, error)
	// Tasks returns the task repository as the caller sees it.
	Tasks(c *domain.Caller) domain.TaskRepo
	// CreateTask records and queues a task (POST /v2/tasks).
	CreateTask(ctx context.Context, c *domain.Caller, typ string, input map[string]any) (domain.Task, error)
}

// stageHandOver is the error of an import whose staged data another API
// worker holds.
type stageHandOver interface {
	error
	StageHost() string
}

// importRoutes are the stage, import, discovery-of-import and task routes.
func (s *server) importRoutes() []route {
	get := func(h echo.HandlerFunc) methodHandler { return methodHandler{http.MethodGet, h} }
	post := func(h echo.HandlerFunc) methodHandler { return methodHandler{http.MethodPost, h} }
	put := func(h echo.HandlerFunc) methodHandler { return methodHandler{http.MethodPut, h} }
	del := func(h echo.HandlerFunc) methodHandler { return methodHandler{http.MethodDelete, h} }
	routes := []route{
		{"/v2/schemas/task", []methodHandler{get(bodyless(s.schemaTask))}},
		{"/v2/schemas/tasks", []methodHandler{get(bodyless(s.schemaTasks))}},
		{"/v2/info/import", []methodHandler{get(bodyless(s.infoImport))}},
		{"/v2/info/usage", []methodHandler{get(bodyless(s.infoUsage))}},
	}
	if s.opts.Imports == nil {
		return routes
	}
	return append(routes,
		route{"/v2/images/:id/stage", []methodHandler{put(mutating(s.inFlight(s.stage)))}},
		route{"/v2/images/:id/import", []methodHandler{post(mutating(s.importImage))}},
		route{"/v2/images/:id/tasks", []methodHandler{get(bodyless(s.imageTasks))}},
		route{"/v2/tasks", []methodHandler{get(s.listTasks), post(s.createTask)}},
		route{"/v2/tasks/:task", []methodHandler{get(s.showTask), del(s.deleteTask)}},
	)
}

// infoImport is GET /v2/info/import (InfoController.get_image_import).
func (s *server) infoImport(c echo.Context) error {
	b := []byte(`{"import-methods": {"description": "Import methods available.", "type": "array", "value": [`)
	for i, m := range s.opts.ImportMethods {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = appendString(b, m)
	}
	return writeJSON(c, http.StatusOK, append(b, "]}}"...))
}

// infoUsage is GET /v2/info/usage (InfoController.get_usage): the
// caller's usage against Keystone's unified limits. Glance reports them
// only with use_keystone_limits, which glance-go does not implement (its
// quotas are the [DEFAULT] image_*_quota options), so the answer is
// Glance's without it: no limit to report.
func (s *server) infoUsage(c echo.Context) error {
	return writeJSON(c, http.StatusOK, []byte(`{"usage": {}}`))
}

// stage is PUT /v2/images/{id}/stage (ImageDataController.stage).
func (s *server) stage(c echo.Context) error {
	if !contains(s.opts.ImportMethods, domain.ImportGlanceDirect) {
		return explain(http.StatusNotFound, "'glance-direct' method is not available at this site.")
	}
	r := c.Request()
	if r.Header.Get(echo.HeaderContentType) == "" || contentType(r) != "application/octet-stream" {
		return &httpError{status: http.StatusUnsupportedMediaType}
	}
	var size int64
	if v := r.Header.Get("X-Openstack-Image-Size"); v != "" {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || n < 0 {
			return badRequest("Invalid or missing image size in request headers.")
		}
		size = n
	} else if r.ContentLength > 0 {
		size = r.ContentLength
	}
	_, img, err := s.getImage(c)
	if err != nil {
		return err
	}
	if err := img.Stage(r.Context(), r.Body, domain.DataIn{Size: size}); err != nil {
		return err
	}
	return noContent(c)
}

// importImage is POST /v2/images/{id}/import (the import_image request
// deserializer, then ImagesController.import_image).
func (s *server) importImage(c echo.Context) error {
	r := c.Request()
	body, err := requireJSON(r)
	if err != nil {
		return err
	}
	obj, ok := body.(object)
	if !ok {
		return badRequest("Unexpected body type. Expected list/dict.")
	}
	req, err := s.importRequest(r, obj)
	if err != nil {
		return err
	}
	err = s.opts.Imports.Import(r.Context(), callerOf(c), c.Param("id"), req)
	var ho stageHandOver
	if errors.As(err, &ho) {
		return s.handOver(c, ho.StageHost(), appendValue(nil, obj))
	}
	if err != nil {
		return err
	}
	return accepted(c)
}

// importRequest reads an import body as Glance's deserializer checks it.
func (s *server) importRequest(r *http.Request, obj object) (domain.ImportRequest, error) {
	req := domain.ImportRequest{AllStoresMustSucceed: true, Body: plain(obj).(map[string]any)}
	mv, ok := obj.get("method")
	if !ok {
		return req, badRequest("Import request requires a 'method' field.")
	}
	method, _ := mv.(object)
	nv, ok := method.get("name")
	if !ok {
		return req, badRequest("Import request requires a 'name' field.")
	}
	name := pyText(nv)
	if !contains(s.opts.ImportMethods, name) {
		return req, badRequest("Unknown import method name '%s'.", name)
	}
	req.Method = name
	for _, f := range []struct {
		key string
		dst *bool
	}{{"all_stores_must_succeed", &req.AllStoresMustSucceed}, {"all_stores", &req.AllStores}} {
		if v, ok := obj.get(f.key); ok {
			b, isBool := v.(bool)
			if !isBool {
				return req, badRequest("'%s' must be boolean value only", f.key)
			}
			*f.dst = b
		}
	}
	if v, ok := method.get("uri"); ok && v != nil {
		req.URI = pyText(v)
	}
	for _, k := range []string{"glance_region", "glance_image_id", "glance_service_interface"} {
		if v, ok := method.get(k); ok {
			if req.Remote == nil {
				req.Remote = map[string]string{}
			}
			req.Remote[k] = pyText(v)
		}
	}
	if v, ok := obj.get("stores"); ok {
		list, isList := v.([]any)
		if !isList {
			return req, badRequest("Invalid value for 'stores': a list of store identifiers is expected.")
		}
		for _, x := range list {
			st, isStr := x.(string)
			if !isStr {
				return req, badRequest("Invalid value for 'stores': a list of store identifiers is expected.")
			}
			req.Stores = append(req.Stores, st)
		}
		req.HasStores = true
	}
	if v, ok := r.Header[http.CanonicalHeaderKey("X-Image-Meta-Store")]; ok && len(v) > 0 {
		req.StoreHeader, req.HasStoreHeader = v[0], true
	}
	return req, nil
}

// accepted answers 202 with an empty body, as webob does.
func accepted(c echo.Context) error {
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "text/html; charset=UTF-8")
	h.Set(echo.HeaderContentLength, "0")
	return c.NoContent(http.StatusAccepted)
}

// handOverTimeout bounds a request handed to another API worker.
const handOverTimeout = 60 * time.Second

// handOver replays the import request against the worker at host, which
// holds the image's staged data, with the caller's own headers
// (ImagesController._proxy_request_to_host). The remote request id becomes
// this response's.
func (s *server) handOver(c echo.Context, host string, body []byte) error {
	r := c.Request()
	ctx, cancel := context.WithTimeout(r.Context(), handOverTimeout)
	defer cancel()
	out, err := http.NewRequestWithContext(ctx, r.Method, strings.TrimRight(host, "/")+r.URL.Path, bytes.NewReader(body))
	if err != nil {
		return explain(http.StatusBadGateway, "Stage host is unavailable")
	}
	for k, vs := range r.Header {
		switch http.CanonicalHeaderKey(k) {
		case "Host", "Content-Length", "Connection", "Transfer-Encoding", "Accept-Encoding":
			continue
		}
		out.Header[k] = vs
	}
	out.Header.Set(echo.HeaderContentType, "application/json")
	resp, err := http.DefaultClient.Do(out)
	if err != nil {
		s.log.Error("cannot hand an import to the worker holding its staged data", "host", host, "error", err)
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" || errors.Is(err, context.DeadlineExceeded) {
			return explain(http.StatusGatewayTimeout, "Stage host is unavailable")
		}
		return explain(http.StatusBadGateway, "Stage host is unavailable")
	}
	resp.Body.Close()
	if id := resp.Header.Get(headerRequestID); id != "" {
		c.Response().Header().Set(headerRequestID, id)
	}
	if resp.StatusCode/100 != 2 {
		return &httpError{status: resp.StatusCode}
	}
	return accepted(c)
}
