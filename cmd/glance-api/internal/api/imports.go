package api

// Importer runs interoperable imports and serves their tasks.
type Importer interface{}

// importRoutes are the stage, import, discovery-of-import and task routes.
func (s *server) importRoutes() []route {
	return nil
}
