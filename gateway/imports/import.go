package imports

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"

	"github.com/glance-go/glance-go/domain"
	"github.com/glance-go/glance-go/proxies/location"
)

// Property names the import flow maintains on an image.
const (
	// LockProperty holds the id of the task importing the image's data.
	LockProperty = "os_glance_import_task"
	// ImportingProperty lists the stores an import is writing to.
	ImportingProperty = "os_glance_importing_to_stores"
	// FailedProperty lists the stores an import failed to write to.
	FailedProperty = "os_glance_failed_import"
)

// ProxyError says that a glance-direct import must be handed to the API
// worker holding the image's staged data (os_glance_stage_host), with the
// caller's own credentials.
type ProxyError struct {
	Host string
}

func (e *ProxyError) Error() string {
	return fmt.Sprintf("the staged data of this image is held by %s", e.Host)
}

// StageHost returns the worker to hand the import to.
func (e *ProxyError) StageHost() string { return e.Host }

var uuidRE = regexp.MustCompile(`^(?i:urn:uuid:)?\{?[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}\}?$`)

// Import starts an import of image id's data for caller c
// (ImagesController.import_image). It checks the request in Glance's order
// and with Glance's messages, records a pending api_image_import task that
// takes the image's import lock, and queues the task; it returns once the
// task is queued. A glance-direct import of data staged by another worker
// gives a *ProxyError.
func (s *Service) Import(ctx context.Context, c *domain.Caller, id string, req domain.ImportRequest) error {
	if !slices.Contains(s.cfg.Methods, req.Method) {
		return domain.Errorf(domain.ErrInvalid, "Unknown import method name '%s'.", req.Method)
	}
	repo, _ := s.cfg.Gateway.Images(c)
	img, err := repo.Get(ctx, id)
	if err != nil {
		return err
	}
	m := img.Meta()
	if err := checkState(m, req); err != nil {
		return err
	}
	if req.Method == domain.ImportGlanceDownload {
		if err := checkRemote(req); err != nil {
			return err
		}
	}
	rule := "modify_image"
	if req.Method == domain.ImportCopyImage {
		rule = "copy_image"
	}
	if !s.cfg.Authorize(c, rule, m) {
		if !s.cfg.Authorize(c, "get_image", m) {
			return domain.Errorf(domain.ErrNotFound, "No image found with ID %s", id)
		}
		return domain.Errorf(domain.ErrForbidden, "You are not authorized to complete %s action.", rule)
	}
	var stolen *domain.Task
	if holder, ok := m.Properties[LockProperty]; ok {
		if stolen, err = s.enforceLock(ctx, c, id, holder); err != nil {
			return err
		}
	}
	targets := []string{""}
	if s.cfg.Stores != nil && s.cfg.Stores.Multi() {
		if targets, err = s.targets(req); err != nil {
			return err
		}
	}
	if req.Method == domain.ImportCopyImage {
		have := storesOf(m)
		if s.cfg.Stores == nil || !s.cfg.Stores.Multi() {
			return domain.Errorf(domain.ErrInvalid, "Image is already present at store '%s'", "default")
		}
		if req.AllStores {
			targets = slices.DeleteFunc(targets, func(st string) bool { return slices.Contains(have, st) })
			if len(targets) == 0 {
				return nil // already in every store: nothing to do
			}
		} else {
			for _, st := range have {
				if slices.Contains(targets, st) {
					return domain.Errorf(domain.ErrInvalid, "Image is already present at store '%s'", st)
				}
			}
		}
	}
	if !req.AllStoresMustSucceed && (s.cfg.Stores == nil || !s.cfg.Stores.Multi()) {
		uri := req.URI
		if uri == "" {
			uri = "None"
		}
		return domain.Errorf(domain.ErrInvalid, "All_stores_must_succeed can only be set with enabled_backends %s", uri)
	}
	if req.Method == domain.ImportGlanceDirect {
		if host := m.Properties[location.StageHostProperty]; host != "" && host != s.cfg.SelfURL {
			return &ProxyError{Host: host}
		}
	}
	if req.Method == domain.ImportWebDownload {
		if s.cfg.WebDownload == nil {
			return domain.Errorf(domain.ErrInvalid, "URI for web-download does not pass filtering: %s", req.URI)
		}
		if err := s.cfg.WebDownload.Validate(req.URI); err != nil {
			return err
		}
	}
	if s.cfg.Stores == nil || s.cfg.Stores.Staging() == nil || s.cfg.StagingDir == "" {
		return domain.Errorf(domain.ErrUnavailable, "No staging area is configured for image imports.")
	}

	backend := make([]any, len(targets))
	for i, st := range targets {
		if st != "" {
			backend[i] = st
		}
	}
	task, err := domain.NewTask(domain.TaskTypeImageImport, c, id, map[string]any{
		"image_id": id, "import_req": req.Body, "backend": backend,
	})
	if err != nil {
		return err
	}
	// The task is recorded before it takes the lock, so that whoever
	// finds the lock finds its task.
	admin := elevated(c)
	tasks := s.cfg.DB.Tasks(admin)
	if err := tasks.Add(ctx, task); err != nil {
		return err
	}
	if err := s.cfg.DB.SetPropertyAtomic(ctx, id, LockProperty, task.ID); err != nil {
		if rerr := tasks.Remove(context.WithoutCancel(ctx), task.ID); rerr != nil {
			s.log.Error("cannot remove the task of a refused import", "task_id", task.ID, "error", rerr)
		}
		if errors.Is(err, domain.ErrConflict) {
			return domain.Errorf(domain.ErrConflict,
				"New operation on image '%s' is not permitted as prior operation is still in progress", id)
		}
		return err
	}
	if stolen != nil {
		s.cleanStaleProgress(ctx, admin, id, stolen)
	}
	f := &flow{s: s, task: task, caller: c, admin: admin, imageID: id, req: req, stores: targets}
	if req.Method == domain.ImportCopyImage {
		// Glance copies with an admin context once copy_image allowed it.
		f.caller = admin
	}
	err = s.spawn(task.ID, f.run, f.abandon)
	if err != nil {
		f.abandon()
	}
	return err
}

// checkState is the status and format checks of import_image.
func checkState(m domain.Meta, req domain.ImportRequest) error {
	conflict := func(format string, args ...any) error { return domain.Errorf(domain.ErrConflict, format, args...) }
	copying := req.Method == domain.ImportCopyImage
	switch {
	case m.Status == domain.StatusActive && !copying:
		return conflict("Image with status active cannot be target for import")
	case m.Status != domain.StatusActive && copying:
		return conflict("Only images with status active can be targeted for copying")
	case m.Status != domain.StatusQueued &&
		(req.Method == domain.ImportWebDownload || req.Method == domain.ImportGlanceDownload):
		return conflict("Image needs to be in 'queued' state to use '%s' method", req.Method)
	case m.Status != domain.StatusUploading && req.Method == domain.ImportGlanceDirect:
		return conflict("Image needs to be staged before 'glance-direct' method can be used")
	case m.ContainerFormat == nil || *m.ContainerFormat == "":
		return conflict("'container_format' needs to be set before import")
	case m.DiskFormat == nil || *m.DiskFormat == "":
		return conflict("'disk_format' needs to be set before import")
	}
	return nil
}

// checkRemote is the glance-download checks of import_image.
func checkRemote(req domain.ImportRequest) error {
	bad := func(format string, args ...any) error { return domain.Errorf(domain.ErrInvalid, format, args...) }
	if _, ok := req.Remote["glance_region"]; !ok {
		return bad("'glance_region' needs to be set for glance-download import method")
	}
	rid, ok := req.Remote["glance_image_id"]
	if !ok {
		return bad("'glance_image_id' needs to be set for glance-download import method")
	}
	if !uuidRE.MatchString(rid) {
		return bad("Remote image id does not look like a UUID: %s", rid)
	}
	return nil
}

// targets returns the stores an import writes to in multi-store
// (glance/common/utils.get_stores_from_request).
func (s *Service) targets(req domain.ImportRequest) ([]string, error) {
	var out []string
	switch {
	case req.AllStores:
		if req.HasStores || req.HasStoreHeader {
			return nil, domain.Errorf(domain.ErrInvalid,
				"All_stores parameter can't be used with x-image-meta-store header or stores parameter")
		}
		for _, b := range s.cfg.Stores.Backends() {
			if !b.ReadOnly() {
				out = append(out, b.ID)
			}
		}
	case req.HasStores:
		if req.HasStoreHeader {
			return nil, domain.Errorf(domain.ErrInvalid, "Stores parameter and x-image-meta-store header can't be both specified")
		}
		out = slices.Clone(req.Stores)
	case req.HasStoreHeader:
		out = []string{req.StoreHeader}
	default:
		out = []string{s.cfg.Stores.DefaultID()}
	}
	for _, st := range out {
		if _, ok := s.cfg.Stores.Backend(st); !ok || st == "" {
			return nil, domain.Errorf(domain.ErrConflict, "Store for identifier %s not found", st)
		}
	}
	return out, nil
}

// storesOf returns the stores holding image data, by location metadata.
func storesOf(m domain.Meta) []string {
	var out []string
	for _, l := range m.Locations {
		if l.Status != "" && l.Status != "active" {
			continue
		}
		if st := location.StoreOf(l); st != "" {
			out = append(out, st)
		}
	}
	return out
}
