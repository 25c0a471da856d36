package api

// locationRoutes are the location routes (/v2/images/{id}/locations,
// DELETE /v2/stores/{store}/{id}).
func (s *server) locationRoutes() []route {
	return nil
}
