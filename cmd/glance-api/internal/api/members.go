package api

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/glance-go/glance-go/domain"
)

// memberImage looks up the image of a member route and checks that it can
// have members (ImageMembersController._lookup_image and
// _check_visibility_and_ownership).
func (s *server) memberImage(c echo.Context) (domain.Image, domain.MemberRepo, error) {
	id := c.Param("id")
	repo, _ := s.gw.Images(callerOf(c))
	img, err := repo.Get(c.Request().Context(), id)
	switch {
	case errors.Is(err, domain.ErrNotFound):
		return nil, nil, withMessage(err, "Image "+id+" not found.")
	case errors.Is(err, domain.ErrForbidden):
		return nil, nil, withMessage(err, "You are not authorized to lookup image "+id+".")
	case err != nil:
		return nil, nil, err
	}
	if img.Meta().Visibility != domain.VisibilityShared {
		return img, nil, domain.Errorf(domain.ErrForbidden, "Only shared images have members.")
	}
	return img, s.gw.Members(callerOf(c), img), nil
}

// isForbidden reports a domain refusal that a member route rewords.
func isForbidden(err error) bool {
	var he *httpError
	if errors.As(err, &he) {
		return false
	}
	return errors.Is(err, domain.ErrForbidden)
}

// lookupMember is ImageMembersController._lookup_member.
func lookupMember(c echo.Context, members domain.MemberRepo, id string) (domain.Member, error) {
	m, err := members.Get(c.Request().Context(), id)
	switch {
	case errors.Is(err, domain.ErrNotFound):
		return m, withMessage(err, id+" not found in the member list of the image "+c.Param("id")+".")
	case errors.Is(err, domain.ErrForbidden):
		return m, withMessage(err, "You are not authorized to lookup the members of the image "+c.Param("id")+".")
	}
	return m, err
}

func (s *server) addMember(c echo.Context) error {
	body, err := requireJSON(c.Request())
	if err != nil {
		return err
	}
	obj, ok := body.(object)
	if !ok {
		return badRequest(`Expected a member in the form: {"member": "image_id"}`)
	}
	v, ok := obj.get("member")
	if !ok {
		return badRequest("Member to be added not specified")
	}
	if v == nil || v == "" || v == false {
		return badRequest("Member can't be empty")
	}
	memberID, ok := v.(string)
	if !ok {
		return badRequest(`Expected a member in the form: {"member": "image_id"}`)
	}
	if fourByte.MatchString(memberID) {
		return badRequest("Member can't contain 4 byte unicode characters.")
	}
	id := c.Param("id")
	_, members, err := s.memberImage(c)
	if err == nil {
		m := domain.NewMember(id, memberID)
		if err = members.Add(c.Request().Context(), m); err == nil {
			return writeJSON(c, http.StatusOK, appendMember(nil, m))
		}
	}
	switch {
	case isForbidden(err):
		return withMessage(err, "Not allowed to create members for image "+id+".")
	case errors.Is(err, domain.ErrConflict):
		return withMessage(err, "Member "+memberID+" is duplicated for image "+id)
	}
	return err
}

func (s *server) listMembers(c echo.Context) error {
	id := c.Param("id")
	_, members, err := s.memberImage(c)
	var list []domain.Member
	if err == nil {
		list, err = members.List(c.Request().Context())
	}
	if isForbidden(err) {
		return withMessage(err, "Not allowed to list members for image "+id+": "+err.Error())
	}
	if err != nil {
		return err
	}
	b := append(make([]byte, 0, 64+len(list)*220), `{"members": [`...)
	for i, m := range list {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = appendMember(b, m)
	}
	b = append(b, `], "schema": "/v2/schemas/members"}`...)
	return writeJSON(c, http.StatusOK, b)
}

func (s *server) showMember(c echo.Context) error {
	_, members, err := s.memberImage(c)
	var m domain.Member
	if err == nil {
		m, err = lookupMember(c, members, c.Param("member"))
	}
	if err != nil && statusOf(err) == http.StatusForbidden {
		return withStatus(http.StatusNotFound, err)
	}
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, appendMember(nil, m))
}

func (s *server) updateMember(c echo.Context) error {
	body, err := requireJSON(c.Request())
	if err != nil {
		return err
	}
	obj, ok := body.(object)
	if !ok {
		return badRequest(`Expected a status in the form: {"status": "status"}`)
	}
	v, ok := obj.get("status")
	if !ok {
		return badRequest("Status not specified")
	}
	id := c.Param("id")
	_, members, err := s.memberImage(c)
	var m domain.Member
	if err == nil {
		m, err = lookupMember(c, members, c.Param("member"))
	}
	if err == nil {
		status, _ := v.(string)
		if !domain.MemberStatus(status).Valid() {
			return badRequest(`Incorrect request: Status must be "pending", "accepted" or "rejected".`)
		}
		m.Status = domain.MemberStatus(status)
		if err = members.Save(c.Request().Context(), m); err == nil {
			if fresh, gerr := members.Get(c.Request().Context(), m.MemberID); gerr == nil {
				m = fresh
			}
			return writeJSON(c, http.StatusOK, appendMember(nil, m))
		}
	}
	if isForbidden(err) {
		return withMessage(err, "Not allowed to update members for image "+id+".")
	}
	return err
}

func (s *server) deleteMember(c echo.Context) error {
	id := c.Param("id")
	_, members, err := s.memberImage(c)
	var m domain.Member
	if err == nil {
		m, err = lookupMember(c, members, c.Param("member"))
	}
	if err == nil {
		err = members.Remove(c.Request().Context(), m)
	}
	if isForbidden(err) {
		return withMessage(err, "Not allowed to delete members for image "+id+".")
	}
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderContentLength, "0")
	return c.NoContent(http.StatusNoContent)
}
