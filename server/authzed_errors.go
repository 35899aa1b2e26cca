package server

import (
	"errors"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/status"

	"github.com/pembadb/pemba/core"
	"github.com/pembadb/pemba/storage"
)

// errorDomain is the domain of the ErrorInfo SpiceDB attaches to errors.
const errorDomain = "authzed.com"

// schemaReasons maps core's schema refusals to SpiceDB's error reasons.
var schemaReasons = map[core.SchemaReason]v1.ErrorReason{
	core.ReasonUnknownDefinition:     v1.ErrorReason_ERROR_REASON_UNKNOWN_DEFINITION,
	core.ReasonUnknownRelation:       v1.ErrorReason_ERROR_REASON_UNKNOWN_RELATION_OR_PERMISSION,
	core.ReasonPermissionNotWritable: v1.ErrorReason_ERROR_REASON_CANNOT_UPDATE_PERMISSION,
	core.ReasonSubjectNotAllowed:     v1.ErrorReason_ERROR_REASON_INVALID_SUBJECT_TYPE,
	core.ReasonUnknownCaveat:         v1.ErrorReason_ERROR_REASON_UNKNOWN_CAVEAT,
}

// errorInfo is the google.rpc.ErrorInfo SpiceDB attaches to err's kind of
// error (its reason from authzed.api.v1's ErrorReason), or nil.
func errorInfo(err error) *errdetails.ErrorInfo {
	info := func(r v1.ErrorReason, md map[string]string) *errdetails.ErrorInfo {
		return &errdetails.ErrorInfo{Reason: r.String(), Domain: errorDomain, Metadata: md}
	}
	var se *core.SchemaError
	var exists *storage.AlreadyExistsError
	switch {
	case errors.As(err, &se):
		r, ok := schemaReasons[se.Reason]
		if !ok {
			return nil
		}
		md := map[string]string{}
		if se.Definition != "" {
			md["definition_name"] = se.Definition
		}
		switch se.Reason {
		case core.ReasonUnknownRelation, core.ReasonPermissionNotWritable:
			md["relation_or_permission_name"] = se.Name
		case core.ReasonUnknownCaveat:
			md["caveat_name"] = se.Name
		}
		return info(r, md)
	case errors.Is(err, storage.ErrPreconditionFailed):
		return info(v1.ErrorReason_ERROR_REASON_WRITE_OR_DELETE_PRECONDITION_FAILURE, nil)
	case errors.As(err, &exists):
		return info(v1.ErrorReason_ERROR_REASON_ATTEMPT_TO_RECREATE_RELATIONSHIP,
			map[string]string{"relationship": exists.Relationship.String()})
	case errors.Is(err, core.ErrTooManyUpdates):
		return info(v1.ErrorReason_ERROR_REASON_TOO_MANY_UPDATES_IN_REQUEST, nil)
	case errors.Is(err, core.ErrDeleteLimit):
		return info(v1.ErrorReason_ERROR_REASON_TOO_MANY_RELATIONSHIPS_FOR_TRANSACTIONAL_DELETE, nil)
	}
	return nil
}

// withErrorInfo attaches err's ErrorInfo (errorInfo) to the status st,
// keeping its code and message.
func withErrorInfo(st error, err error) error {
	info := errorInfo(err)
	if info == nil {
		return st
	}
	s, derr := status.Convert(st).WithDetails(info)
	if derr != nil {
		return st
	}
	return s.Err()
}
