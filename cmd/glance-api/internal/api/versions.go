package api

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// pathVersions are the version prefixes accepted on paths with neither
// multi-store nor the cache enabled (version_negotiation.py).
var pathVersions = map[string]bool{
	"v2": true, "v2.0": true, "v2.1": true, "v2.2": true, "v2.3": true, "v2.4": true,
	"v2.5": true, "v2.6": true, "v2.7": true, "v2.9": true, "v2.15": true, "v2.17": true,
}

// versionList is the version document's order in newest Glance with the
// cache and multi-store off.
var versionList = []struct{ id, status string }{
	{"v2.15", "SUPPORTED"}, {"v2.9", "SUPPORTED"}, {"v2.17", "CURRENT"},
	{"v2.7", "SUPPORTED"}, {"v2.6", "SUPPORTED"}, {"v2.5", "SUPPORTED"}, {"v2.4", "SUPPORTED"},
	{"v2.3", "SUPPORTED"}, {"v2.2", "SUPPORTED"}, {"v2.1", "SUPPORTED"}, {"v2.0", "SUPPORTED"},
}

const mediaTypeVersion = "application/vnd.openstack.images-"

// versionNegotiation answers the version document for "/", "/versions" and
// unknown version prefixes, and rewrites "/v2.N/..." to "/v2/...".
func (s *server) versionNegotiation(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		rest := strings.TrimLeft(r.URL.Path, "/")
		first, _, _ := strings.Cut(rest, "/")
		if first == "versions" {
			return s.versions(c, http.StatusOK)
		}
		if accept := r.Header.Get(echo.HeaderAccept); strings.HasPrefix(accept, mediaTypeVersion) {
			if !pathVersions[accept[len(mediaTypeVersion):]] {
				return s.versions(c, http.StatusMultipleChoices)
			}
			setPath(r, "/v2"+r.URL.Path, "/v2"+r.URL.RawPath)
			return next(c)
		}
		if !pathVersions[first] {
			return s.versions(c, http.StatusMultipleChoices)
		}
		if first != "v2" {
			setPath(r, "/v2"+strings.TrimPrefix(strings.TrimLeft(r.URL.Path, "/"), first),
				"/v2"+strings.TrimPrefix(strings.TrimLeft(r.URL.RawPath, "/"), first))
		}
		return next(c)
	}
}

func setPath(r *http.Request, path, raw string) {
	r.URL.Path = path
	if r.URL.RawPath != "" {
		r.URL.RawPath = raw
	}
}

// versions writes the version document with the given status.
func (s *server) versions(c echo.Context, status int) error {
	href := s.baseURL(c.Request()) + "/v2/"
	b := make([]byte, 0, 1400)
	b = append(b, `{"versions": [`...)
	for i, v := range versionList {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, `{"id": "`...)
		b = append(b, v.id...)
		b = append(b, `", "status": "`...)
		b = append(b, v.status...)
		b = append(b, `", "links": [{"rel": "self", "href": `...)
		b = appendString(b, href)
		b = append(b, "}]}"...)
	}
	b = append(b, "]}"...)
	return writeJSON(c, status, b)
}
