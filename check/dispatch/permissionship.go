package dispatch

import "fmt"

// Permissionship is the answer to a permission question. It is defined
// here, where Answers carry it, and package check exports it under the
// same name (check.Permissionship, with check.NoPermission,
// check.HasPermission and check.Conditional for No, Yes and Maybe).
type Permissionship uint8

const (
	// No: the subject does not have the permission.
	No Permissionship = iota
	// Yes: the subject has the permission.
	Yes
	// Maybe: the answer depends on caveat parameters the request did not
	// supply; Answer.Missing names them.
	Maybe
)

// String returns the permissionship's name as the API spells it.
func (p Permissionship) String() string {
	switch p {
	case No:
		return "NO_PERMISSION"
	case Yes:
		return "HAS_PERMISSION"
	case Maybe:
		return "CONDITIONAL"
	}
	return fmt.Sprintf("Permissionship(%d)", uint8(p))
}
