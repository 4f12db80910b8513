package httpapi

// registerArchiveRoutes routes this file's endpoints when the containers backend has
// what they need. (Placeholder: filled in by the issue-6 work.)
func (s *Server) registerArchiveRoutes() {}
