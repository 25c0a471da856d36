package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/glance-go/glance-go/stores"
)

// storeRoutes are the store discovery routes (/v2/info/stores…,
// glance/api/v2/discovery.py).
func (s *server) storeRoutes() []route {
	get := func(h echo.HandlerFunc) methodHandler { return methodHandler{http.MethodGet, h} }
	return []route{
		{"/v2/info/stores", []methodHandler{get(bodyless(func(c echo.Context) error { return s.listStores(c, false) }))}},
		{"/v2/info/stores/detail", []methodHandler{get(bodyless(func(c echo.Context) error { return s.listStores(c, true) }))}},
	}
}

// propertyOrder is the order in which discovery.py builds each store
// type's properties; keys it does not name follow, sorted.
var propertyOrder = map[string][]string{
	"file":   {"data_dir", "chunk_size", "thin_provisioning"},
	"rbd":    {"chunk_size", "pool", "thin_provisioning", "fsid"},
	"cinder": {"volume_type", "use_multipath"},
	"swift":  {"container", "large_object_size", "large_object_chunk_size"},
	"s3":     {"s3_store_large_object_size", "s3_store_large_object_chunk_size", "s3_store_thread_pools"},
}

// listStores answers GET /v2/info/stores and, with detail, the admin view
// /v2/info/stores/detail: the enabled backends in configuration order,
// without the reserved ones, with the booleans as strings.
func (s *server) listStores(c echo.Context, detail bool) error {
	set := s.opts.Stores
	if set == nil || !set.Multi() {
		return explain(http.StatusNotFound, "Multi backend is not supported at this site.")
	}
	if detail && s.opts.Authorize != nil && !s.opts.Authorize(callerOf(c), "stores_info_detail") {
		return explain(http.StatusForbidden, "You are not authorized to complete stores_info_detail action.")
	}
	var b strings.Builder
	b.WriteString(`{"stores": [`)
	first := true
	for _, be := range set.Backends() {
		if strings.HasPrefix(be.ID, stores.ReservedPrefix) {
			continue
		}
		if !first {
			b.WriteString(", ")
		}
		first = false
		b.WriteString(`{"id": `)
		writePyString(&b, be.ID)
		if be.Description != "" {
			b.WriteString(`, "description": `)
			writePyString(&b, be.Description)
		}
		if be.ID == set.DefaultID() {
			b.WriteString(`, "default": "true"`)
		}
		if be.ReadOnly() {
			b.WriteString(`, "read-only": "true"`)
		}
		if detail {
			b.WriteString(`, "type": `)
			writePyString(&b, be.Type)
			b.WriteString(`, "properties": `)
			writeProperties(&b, be.Type, be.Properties)
			b.WriteString(`, "weight": `)
			b.WriteString(strconv.Itoa(be.Weight))
		}
		b.WriteByte('}')
	}
	b.WriteString("]}")
	return writeJSON(c, http.StatusOK, []byte(b.String()))
}

// writeProperties writes a store's properties as a JSON object in
// discovery.py's key order.
func writeProperties(b *strings.Builder, typ string, props map[string]any) {
	keys := make([]string, 0, len(props))
	for _, k := range propertyOrder[typ] {
		if _, ok := props[k]; ok {
			keys = append(keys, k)
		}
	}
	var rest []string
	for k := range props {
		if !slices.Contains(keys, k) {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	b.WriteByte('{')
	for i, k := range append(keys, rest...) {
		if i > 0 {
			b.WriteString(", ")
		}
		writePyString(b, k)
		b.WriteString(": ")
		writePyValue(b, props[k])
	}
	b.WriteByte('}')
}

// writePyValue writes a scalar the way Python's json.dumps does.
func writePyValue(b *strings.Builder, v any) {
	switch t := v.(type) {
	case nil:
		b.WriteString("null")
	case string:
		writePyString(b, t)
	case bool:
		b.WriteString(strconv.FormatBool(t))
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		fmt.Fprint(b, t)
	default:
		j, err := json.Marshal(t)
		if err != nil {
			b.WriteString("null")
			return
		}
		b.Write(j)
	}
}
