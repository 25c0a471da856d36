package domain_test

import (
	"errors"
	"testing"
	"time"

	"github.com/glance-go/glance-go/domain"
)

func TestNewTask(t *testing.T) {
	c := &domain.Caller{ProjectID: "p", UserID: "u", RequestID: "req-x"}
	tk, err := domain.NewTask(domain.TaskTypeImageImport, c, "img", map[string]any{"image_id": "img"})
	if err != nil {
		t.Fatal(err)
	}
	if tk.Status != domain.TaskPending || tk.Owner != "p" || tk.UserID != "u" || tk.RequestID != "req-x" ||
		tk.ImageID != "img" || tk.ID == "" || tk.ExpiresAt != nil || !tk.CreatedAt.Equal(tk.UpdatedAt) {
		t.Errorf("new task = %+v", tk)
	}
	_, err = domain.NewTask("clone", c, "", nil)
	var de *domain.Error
	if !errors.As(err, &de) || !errors.Is(err, domain.ErrInvalid) || de.Msg != "Provided type of task is unsupported: clone" {
		t.Errorf("unknown type: %v", err)
	}
}

func TestTaskTransitions(t *testing.T) {
	tests := []struct {
		name string
		from domain.TaskStatus
		do   func(tk *domain.Task) error
		want domain.TaskStatus // "" when refused
	}{
		{"begin pending", domain.TaskPending, (*domain.Task).Begin, domain.TaskProcessing},
		{"fail pending", domain.TaskPending, func(tk *domain.Task) error { return tk.Fail("boom", time.Hour) }, domain.TaskFailure},
		{"succeed pending", domain.TaskPending, func(tk *domain.Task) error { return tk.Succeed(nil, time.Hour) }, ""},
		{"succeed processing", domain.TaskProcessing, func(tk *domain.Task) error { return tk.Succeed(map[string]any{"a": 1}, time.Hour) }, domain.TaskSuccess},
		{"fail processing", domain.TaskProcessing, func(tk *domain.Task) error { return tk.Fail("boom", time.Hour) }, domain.TaskFailure},
		{"begin processing", domain.TaskProcessing, (*domain.Task).Begin, ""},
		{"fail success", domain.TaskSuccess, func(tk *domain.Task) error { return tk.Fail("late", time.Hour) }, ""},
		{"begin failure", domain.TaskFailure, (*domain.Task).Begin, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tk := domain.Task{Status: tc.from}
			err := tc.do(&tk)
			if tc.want == "" {
				if !errors.Is(err, domain.ErrConflict) || tk.Status != tc.from {
					t.Fatalf("err %v, status %s; want a conflict and no change", err, tk.Status)
				}
				want := "Status transition from " + string(tc.from) + " to "
				if len(err.Error()) < len(want) || err.Error()[:len(want)] != want {
					t.Errorf("message %q", err)
				}
				return
			}
			if err != nil || tk.Status != tc.want {
				t.Fatalf("err %v, status %s; want %s", err, tk.Status, tc.want)
			}
			if tk.Done() != (tc.want == domain.TaskSuccess || tc.want == domain.TaskFailure) {
				t.Errorf("Done() = %v", tk.Done())
			}
			if tk.Done() {
				if tk.ExpiresAt == nil || time.Until(*tk.ExpiresAt) < 59*time.Minute {
					t.Errorf("expires_at %v, want an hour from now", tk.ExpiresAt)
				}
			}
			if tc.want == domain.TaskFailure && tk.Message != "boom" {
				t.Errorf("message %q", tk.Message)
			}
		})
	}
}

func TestTaskClone(t *testing.T) {
	tk := domain.Task{Input: map[string]any{"a": map[string]any{"b": []any{"c"}}}}
	c := tk.Clone()
	c.Input["a"].(map[string]any)["b"].([]any)[0] = "changed"
	if tk.Input["a"].(map[string]any)["b"].([]any)[0] != "c" {
		t.Error("Clone shares nested values")
	}
}
