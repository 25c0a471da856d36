package imports

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/glance-go/glance-go/domain"
)

// CreateTask records a task of type typ with input for caller c and
// queues it (TasksController.create, POST /v2/tasks). A legacy import
// (type import) checks its import_from URI first and, when it runs,
// creates an image from image_properties and uploads the URI's data to
// it. The other types belong to the import and locations APIs: such a task
// is recorded and then fails.
func (s *Service) CreateTask(ctx context.Context, c *domain.Caller, typ string, input map[string]any) (domain.Task, error) {
	var uri string
	if typ == domain.TaskTypeImport {
		var err error
		if uri, err = s.legacyURI(input); err != nil {
			return domain.Task{}, err
		}
	}
	imageID, _ := input["image_id"].(string)
	task, err := domain.NewTask(typ, c, imageID, input)
	if err != nil {
		return domain.Task{}, err
	}
	tasks := s.cfg.DB.Tasks(c)
	if err := tasks.Add(ctx, task); err != nil {
		return domain.Task{}, err
	}
	caller := *c
	fail := func(msg string) {
		t := task
		if err := t.Fail(msg, s.cfg.TaskTTL); err == nil {
			if err := s.cfg.DB.Tasks(elevated(&caller)).Save(context.Background(), t); err != nil {
				s.log.Error("cannot fail a task", "task_id", t.ID, "error", err)
			}
		}
	}
	run := func(ctx context.Context) {
		if typ != domain.TaskTypeImport {
			fail(fmt.Sprintf("Tasks of type %s are run by the API that creates them, not by POST /v2/tasks.", typ))
			return
		}
		s.legacyImport(ctx, &caller, task, uri)
	}
	if err := s.spawn(task.ID, run, func() { fail(errShutdown.Error()) }); err != nil {
		fail(errShutdown.Error())
		return domain.Task{}, err
	}
	return task, nil
}

// legacyURI checks the import_from of a legacy import task
// (glance/common/scripts/utils.validate_legacy_import_from_uri).
func (s *Service) legacyURI(input map[string]any) (string, error) {
	raw, ok := input["import_from"]
	uri, _ := raw.(string)
	switch {
	case !ok || raw == nil || uri == "":
		shown := "None"
		if ok && raw != nil {
			shown = fmt.Sprint(raw)
		}
		return "", domain.Errorf(domain.ErrInvalid, "Invalid location: %s", shown)
	case strings.HasPrefix(uri, "http://"), strings.HasPrefix(uri, "https://"):
	case strings.HasPrefix(uri, "file:///"), strings.HasPrefix(uri, "filesystem:///"):
		return "", domain.Errorf(domain.ErrInvalid, "File based imports are not allowed. Please use a non-local source of image data.")
	default:
		return "", domain.Errorf(domain.ErrInvalid, "The given uri is not valid. Please specify a valid uri from the "+
			"following list of supported uri ['http']")
	}
	if s.cfg.WebDownload == nil || s.cfg.WebDownload.Validate(uri) != nil {
		return "", domain.Errorf(domain.ErrInvalid, "URI for legacy import task does not pass filtering: %s", uri)
	}
	return uri, nil
}

// legacyImport runs a legacy import task
// (glance/common/scripts/image_import/main.py): a new image made from the
// task's image_properties receives the data of uri.
func (s *Service) legacyImport(ctx context.Context, c *domain.Caller, task domain.Task, uri string) {
	tasks := s.cfg.DB.Tasks(elevated(c))
	bg := context.WithoutCancel(ctx)
	if err := task.Begin(); err == nil {
		if err := tasks.Save(bg, task); err != nil {
			s.log.Error("cannot record the start of a task", "task_id", task.ID, "error", err)
		}
	}
	id, err := s.importFrom(ctx, c, task.Input, uri)
	if err == nil {
		err = task.Succeed(map[string]any{"image_id": id}, s.cfg.TaskTTL)
	} else {
		if ctx.Err() != nil {
			err = errShutdown
		}
		s.log.Warn("legacy import task failed", "task_id", task.ID, "error", err)
		err = task.Fail(message(err), s.cfg.TaskTTL)
	}
	if err == nil {
		err = tasks.Save(bg, task)
	}
	if err != nil {
		s.log.Error("cannot record the end of a task", "task_id", task.ID, "error", err)
	}
}

func (s *Service) importFrom(ctx context.Context, c *domain.Caller, input map[string]any, uri string) (string, error) {
	props, _ := input["image_properties"].(map[string]any)
	m, err := legacyMeta(props)
	if err != nil {
		return "", err
	}
	repo, factory := s.cfg.Gateway.Images(c)
	img, err := factory.NewImage(ctx, m)
	if err != nil {
		return "", err
	}
	if err := repo.Add(ctx, img); err != nil {
		return "", err
	}
	id := img.Meta().ID
	rc, size, err := s.cfg.WebDownload.Open(ctx, uri)
	if err != nil {
		return id, err
	}
	defer rc.Close()
	if size < 0 {
		size = 0
	}
	return id, img.SetData(ctx, rc, domain.DataIn{Size: size})
}

// legacyMeta builds a new image's record from a legacy import's
// image_properties: base attributes by name, every other key an extra
// property.
func legacyMeta(props map[string]any) (domain.Meta, error) {
	m := domain.Meta{Properties: map[string]string{}}
	bad := func(k string) error {
		return domain.Errorf(domain.ErrInvalid, "Invalid value for image property %s", k)
	}
	str := func(v any) *string {
		if s, ok := v.(string); ok {
			return &s
		}
		return nil
	}
	num := func(k string, v any) (int, error) {
		switch n := v.(type) {
		case json.Number:
			i, err := strconv.Atoi(n.String())
			if err != nil || i < 0 {
				return 0, bad(k)
			}
			return i, nil
		case float64:
			if n < 0 || n != float64(int(n)) {
				return 0, bad(k)
			}
			return int(n), nil
		}
		return 0, bad(k)
	}
	var err error
	for k, v := range props {
		switch k {
		case "name":
			m.Name = str(v)
		case "disk_format":
			m.DiskFormat = str(v)
		case "container_format":
			m.ContainerFormat = str(v)
		case "visibility":
			s, _ := v.(string)
			m.Visibility = domain.Visibility(s)
		case "protected":
			m.Protected, _ = v.(bool)
		case "os_hidden":
			m.Hidden, _ = v.(bool)
		case "min_ram":
			m.MinRAM, err = num(k, v)
		case "min_disk":
			m.MinDisk, err = num(k, v)
		case "tags":
			list, _ := v.([]any)
			for _, t := range list {
				if s, ok := t.(string); ok {
					m.Tags = append(m.Tags, s)
				}
			}
		case "id", "status", "size", "virtual_size", "checksum", "owner", "created_at", "updated_at",
			"locations", "direct_url", "self", "file", "schema", "os_hash_algo", "os_hash_value":
			// read-only or reserved: ignored, as the factory would refuse them
		default:
			if strings.HasPrefix(k, "os_glance") {
				continue
			}
			s, ok := v.(string)
			if !ok {
				return m, bad(k)
			}
			m.Properties[k] = s
		}
		if err != nil {
			return m, err
		}
	}
	return m, nil
}
