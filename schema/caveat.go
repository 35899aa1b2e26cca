package schema

import "fmt"

// caveatProgram holds the compiled CEL program of a caveat.
type caveatProgram struct{}

// Evaluate decides the caveat for context (parameter name → JSON-compatible
// value). Parameters absent from context are unknown: if the outcome depends
// on them it is undecided and Missing names them.
func (c *Caveat) Evaluate(context map[string]any) (CaveatOutcome, error) {
	if c.program == nil {
		return CaveatOutcome{}, fmt.Errorf("caveat %q: not compiled", c.Name)
	}
	return CaveatOutcome{}, fmt.Errorf("caveat %q: evaluation not implemented", c.Name)
}
