package api

import (
	"errors"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/glance-go/glance-go/domain"
)

// contentType is the media type of a request without parameters.
func contentType(r *http.Request) string {
	ct, _, _ := strings.Cut(r.Header.Get(echo.HeaderContentType), ";")
	return strings.TrimSpace(ct)
}

func (s *server) upload(c echo.Context) error {
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
	in := domain.DataIn{Size: size}
	if s.multiStore() {
		// X-Image-Meta-Store names the backend; without it the default one.
		in.Store = r.Header.Get("X-Image-Meta-Store")
		if in.Store == "" {
			in.Store = s.opts.Stores.DefaultID()
		}
		if b, ok := s.opts.Stores.Backend(in.Store); !ok || b == nil {
			return explain(http.StatusBadRequest, "Store for identifier %s not found", in.Store)
		}
	}
	_, img, err := s.getImage(c)
	if err != nil {
		return err
	}
	if err := img.SetData(r.Context(), r.Body, in); err != nil {
		if errors.Is(err, domain.ErrUnsupported) {
			// webob's 415 body shows the detail, not the explanation.
			return &httpError{status: http.StatusUnsupportedMediaType, detail: err.Error(), err: err}
		}
		return err
	}
	return noContent(c)
}

// byteRange is a validated single range of the image data.
type byteRange struct {
	off, n int64 // n is the length served
	end    int64 // last byte served, for Content-Range
}

var (
	rangeRe        = regexp.MustCompile(`(?i)^bytes *= *(\d*) *- *(\d*)`)
	contentRangeRe = regexp.MustCompile(`^bytes (?:(\d+)-(\d+)|[*])/(?:(\d+)|[*])`)
)

// parseRange reads Range, or the legacy Content-Range request header, for
// an image of size bytes (wsgi.Request.get_range_from_request and the
// download serializer). It returns nil when the whole image is wanted.
func parseRange(r *http.Request, size int64) (*byteRange, error) {
	if h, ok := r.Header["Range"]; ok {
		v := strings.Join(h, ",")
		if strings.Contains(v, ",") {
			return nil, badRequest("Requests with multiple ranges are not supported in Glance. " +
				"You may make multiple single-range requests instead.")
		}
		m := rangeRe.FindStringSubmatch(v)
		if m == nil || (m[1] == "" && m[2] == "") {
			return nil, detailed(http.StatusRequestedRangeNotSatisfiable, "Invalid Range header.")
		}
		if m[1] == "" { // suffix: the last n bytes; "-0" means from the start
			n, err := strconv.ParseInt(m[2], 10, 64)
			if err != nil {
				return nil, detailed(http.StatusRequestedRangeNotSatisfiable, "Invalid Range header.")
			}
			if n == 0 {
				n = size
			}
			off := int64(0)
			if n < size {
				off = size - n
			}
			return &byteRange{off: off, n: size - off, end: size - 1}, nil
		}
		start, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil {
			return nil, detailed(http.StatusRequestedRangeNotSatisfiable, "Invalid Range header.")
		}
		stop := int64(-1) // exclusive end
		if m[2] != "" {
			e, err := strconv.ParseInt(m[2], 10, 64)
			if err != nil || start > e {
				return nil, detailed(http.StatusRequestedRangeNotSatisfiable, "Invalid Range header.")
			}
			stop = e + 1
		}
		if start >= size {
			return nil, detailed(http.StatusRequestedRangeNotSatisfiable,
				"Invalid start position in Range header. Start position MUST be in the inclusive range [0, %d].", size-1)
		}
		if stop >= 0 && stop < size {
			return &byteRange{off: start, n: stop - start, end: stop - 1}, nil
		}
		return &byteRange{off: start, n: size - start, end: size - 1}, nil
	}
	if h, ok := r.Header["Content-Range"]; ok {
		m := contentRangeRe.FindStringSubmatch(strings.Join(h, ","))
		invalid := detailed(http.StatusRequestedRangeNotSatisfiable, "Invalid Content-Range header.")
		if m == nil || m[1] == "" {
			return nil, invalid
		}
		start, err1 := strconv.ParseInt(m[1], 10, 64)
		last, err2 := strconv.ParseInt(m[2], 10, 64)
		if err1 != nil || err2 != nil || start > last {
			return nil, invalid
		}
		stop := last + 1
		if m[3] != "" {
			length, err := strconv.ParseInt(m[3], 10, 64)
			if err != nil || stop > length || start >= length {
				return nil, invalid
			}
		}
		// Glance checks the stop only when no length is given, and then
		// promises more bytes than the image has; the range must fit the
		// image whatever length the header claims.
		if stop > size {
			return nil, detailed(http.StatusRequestedRangeNotSatisfiable,
				"Invalid stop position in Content-Range header. The stop position MUST be in the inclusive range [0, %d].", size-1)
		}
		if start >= size {
			return nil, detailed(http.StatusRequestedRangeNotSatisfiable,
				"Invalid start position in Content-Range header. Start position MUST be in the inclusive range [0, %d].", size-1)
		}
		return &byteRange{off: start, n: stop - start, end: last}, nil
	}
	return nil, nil
}

func (s *server) download(c echo.Context) error {
	r := c.Request()
	_, img, err := s.getImage(c)
	if err != nil {
		return err
	}
	// A deactivated image is refused by the authorization layer, in Data.
	m := img.Meta()
	var size int64
	var rng *byteRange
	if m.Size != nil {
		size = *m.Size
		if rng, err = parseRange(r, size); err != nil {
			return err
		}
	}
	off, n := int64(0), int64(-1)
	if rng != nil {
		off, n = rng.off, rng.n
	}
	rc, err := img.Data(r.Context(), off, n)
	if errors.Is(err, domain.ErrNoData) {
		return noContent(c)
	}
	if err != nil {
		return err
	}
	defer rc.Close()
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "application/octet-stream")
	if m.Checksum != nil && *m.Checksum != "" {
		h.Set("Content-MD5", *m.Checksum)
	}
	status := http.StatusOK
	switch {
	case rng != nil:
		status = http.StatusPartialContent
		h.Set("Content-Range", "bytes "+strconv.FormatInt(rng.off, 10)+"-"+strconv.FormatInt(rng.end, 10)+"/"+
			strconv.FormatInt(size, 10))
		h.Set(echo.HeaderContentLength, strconv.FormatInt(rng.n, 10))
	case m.Size != nil:
		h.Set(echo.HeaderContentLength, strconv.FormatInt(size, 10))
	}
	c.Response().WriteHeader(status)
	// The body goes to net/http's own ResponseWriter, not echo's wrapper:
	// a store reader that writes itself out of a file either hands the file
	// to its ReadFrom, which reaches sendfile, or writes 1 MiB buffers to it,
	// whichever the store found faster on this machine.
	written, err := io.Copy(c.Response().Writer, rc)
	wroteDirect(c, written)
	if err != nil {
		s.log.Warn("image download interrupted", "image", m.ID, "request_id", callerOf(c).RequestID, "error", err)
	}
	return nil
}
