package api

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// version is one entry of the version document.
type version struct{ id, status string }

// versionsFor is the version document of newest Glance with the cache off
// (versions.py): multi-store adds 2.8 and 2.10 to 2.13.
func versionsFor(multiStore bool) []version {
	vs := []version{{"v2.15", "SUPPORTED"}}
	if multiStore {
		vs = append(vs, version{"v2.13", "SUPPORTED"}, version{"v2.12", "SUPPORTED"}, version{"v2.11", "SUPPORTED"},
			version{"v2.10", "SUPPORTED"}, version{"v2.9", "SUPPORTED"}, version{"v2.8", "SUPPORTED"})
	} else {
		vs = append(vs, version{"v2.9", "SUPPORTED"})
	}
	return append(vs, version{"v2.17", "CURRENT"},
		version{"v2.7", "SUPPORTED"}, version{"v2.6", "SUPPORTED"}, version{"v2.5", "SUPPORTED"}, version{"v2.4", "SUPPORTED"},
		version{"v2.3", "SUPPORTED"}, version{"v2.2", "SUPPORTED"}, version{"v2.1", "SUPPORTED"}, version{"v2.0", "SUPPORTED"})
}

// pathVersionsFor are the version prefixes accepted on paths
// (version_negotiation.py): "v2" and every version of the document.
func pathVersionsFor(vs []version) map[string]bool {
	m := map[string]bool{"v2": true}
	for _, v := range vs {
		m[v.id] = true
	}
	return m
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
			if !s.pathVersions[accept[len(mediaTypeVersion):]] {
				return s.versions(c, http.StatusMultipleChoices)
			}
			setPath(r, "/v2"+r.URL.Path, "/v2"+r.URL.RawPath)
			return next(c)
		}
		if !s.pathVersions[first] {
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
	c.Set(ctxRoute, "/versions")
	href := s.baseURL(c.Request()) + "/v2/"
	b := make([]byte, 0, 1400)
	b = append(b, `{"versions": [`...)
	for i, v := range s.versionList {
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
