package server

import pb "github.com/pembadb/pemba/proto/pemba/v1"

// accessService serves pemba.v1.AccessService: the analyst's questions
// over the whole graph. Each RPC lives in its own file: access_who.go
// (WhoCanAccess, WhatCanAccess) and access_change.go (ExpiringAccess,
// AccessDiff). An RPC not implemented there answers UNIMPLEMENTED.
type accessService struct {
	pb.UnimplementedAccessServiceServer
	s *Server
}
