package schema

import (
	"fmt"
	"slices"
	"sort"
)

// CheckContext checks a context stored with a relationship (or sent with a
// request) against the caveat's parameters: every key must name a
// parameter, and every value must convert to the parameter's declared
// type. The error names the caveat, the parameter and, inside lists and
// maps, the path to the bad value. Keys are checked in sorted order, so
// the error is deterministic.
func (c *Caveat) CheckContext(context map[string]any) error {
	names := make([]string, 0, len(context))
	for name := range context {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if !slices.ContainsFunc(c.Params, func(p CaveatParam) bool { return p.Name == name }) {
			return fmt.Errorf("caveat %q has no parameter %q", c.Name, name)
		}
		if c.program == nil {
			continue
		}
		if _, err := convertParam(c.program.params[name], context[name]); err != nil {
			return fmt.Errorf("caveat %q: parameter %q%w", c.Name, name, err)
		}
	}
	return nil
}
