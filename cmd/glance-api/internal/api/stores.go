package api

// storeRoutes are the store discovery routes (/v2/info/stores…).
func (s *server) storeRoutes() []route {
	return nil
}
