package schema

import (
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"

	"github.com/pembadb/pemba/graph"
)

// CaveatCostLimit bounds the work one caveat evaluation may do, in CEL
// cost units; an expression exceeding it fails instead of running long.
const CaveatCostLimit = 1_000_000

// caveatProgram holds the compiled CEL programs of a caveat: full runs
// when every parameter is known, partial (slower: it tracks unknowns) when
// some are missing.
type caveatProgram struct {
	full    cel.Program
	partial cel.Program
	params  map[string]*paramType
}

// paramType is a caveat parameter type: its CEL type and how to convert
// JSON values to it.
type paramType struct {
	name string // canonical text, "list<int>"
	cel  *cel.Type
	elem *paramType // for list and map
	// hasAny is set when the type is or contains `any`, whose values pass
	// to CEL unconverted and so unbounded by the type's own depth.
	hasAny bool
}

// ipAddressType is the CEL type of `ipaddress` parameters.
var ipAddressType = types.NewOpaqueType("ipaddress")

// ipAddress is an `ipaddress` value in CEL.
type ipAddress struct{ addr netip.Addr }

func (ip ipAddress) ConvertToNative(t reflect.Type) (any, error) {
	if t == reflect.TypeOf(netip.Addr{}) {
		return ip.addr, nil
	}
	if t.Kind() == reflect.String {
		return ip.addr.String(), nil
	}
	return nil, fmt.Errorf("ipaddress cannot be converted to %v", t)
}

func (ip ipAddress) ConvertToType(t ref.Type) ref.Val {
	switch t {
	case types.StringType:
		return types.String(ip.addr.String())
	case types.TypeType:
		return ipAddressType
	}
	return types.NewErr("ipaddress cannot be converted to %s", t.TypeName())
}

func (ip ipAddress) Equal(other ref.Val) ref.Val {
	o, ok := other.(ipAddress)
	return types.Bool(ok && o.addr == ip.addr)
}

func (ip ipAddress) Type() ref.Type { return ipAddressType }
func (ip ipAddress) Value() any     { return ip.addr }

// baseEnv is the CEL environment every caveat extends: standard CEL plus
// the ipaddress type and its in_cidr function. Built once.
var baseEnv = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(
		cel.Function("in_cidr",
			cel.MemberOverload("ipaddress_in_cidr_string", []*cel.Type{ipAddressType, cel.StringType}, cel.BoolType,
				cel.BinaryBinding(func(lhs, rhs ref.Val) ref.Val {
					ip, ok := lhs.(ipAddress)
					if !ok {
						return types.NewErr("in_cidr: receiver is not an ipaddress")
					}
					prefix, err := netip.ParsePrefix(string(rhs.(types.String)))
					if err != nil {
						return types.NewErr("in_cidr: invalid CIDR %q", string(rhs.(types.String)))
					}
					return types.Bool(prefix.Contains(ip.addr))
				}))),
	)
})

var scalarParamTypes = map[string]*cel.Type{
	"any":       cel.DynType,
	"bool":      cel.BoolType,
	"string":    cel.StringType,
	"int":       cel.IntType,
	"uint":      cel.UintType,
	"double":    cel.DoubleType,
	"bytes":     cel.BytesType,
	"duration":  cel.DurationType,
	"timestamp": cel.TimestampType,
	"ipaddress": ipAddressType,
}

var paramTypeNames = []string{"any", "bool", "bytes", "double", "duration", "int", "ipaddress", "list", "map", "string", "timestamp", "uint"}

// resolveParamType checks a parameter type expression and reports problems
// to the compiler.
func (c *compiler) resolveParamType(t *TypeExpr) *paramType {
	switch t.Name {
	case "list", "map":
		if len(t.Args) != 1 {
			c.errs.add(t.Pos, "", "type %q takes exactly one type argument, like %s<string>", t.Name, t.Name)
			return nil
		}
		elem := c.resolveParamType(t.Args[0])
		if elem == nil {
			return nil
		}
		pt := &paramType{name: t.Name + "<" + elem.name + ">", elem: elem, hasAny: elem.hasAny}
		if t.Name == "list" {
			pt.cel = cel.ListType(elem.cel)
		} else {
			pt.cel = cel.MapType(cel.StringType, elem.cel)
		}
		return pt
	}
	ct, ok := scalarParamTypes[t.Name]
	if !ok {
		c.errs.add(t.Pos, suggest(t.Name, paramTypeNames), "unknown parameter type %q", t.Name)
		return nil
	}
	if len(t.Args) != 0 {
		c.errs.add(t.Pos, "", "type %q takes no type arguments", t.Name)
		return nil
	}
	return &paramType{name: t.Name, cel: ct, hasAny: t.Name == "any"}
}

// caveat compiles a caveat declaration, reporting every problem.
func (c *compiler) caveat(d *CaveatDecl) *Caveat {
	cv := &Caveat{Name: d.Name, Doc: joinComments(d.Comments), Pos: d.Pos, Expression: d.Body}
	params := map[string]*paramType{}
	var vars []cel.EnvOption
	ok := true
	for _, p := range d.Params {
		if !paramNamePattern.MatchString(p.Name) {
			c.errs.add(p.Pos, "", "invalid parameter name %q in caveat %q", p.Name, d.Name)
			ok = false
			continue
		}
		if _, dup := params[p.Name]; dup {
			c.errs.add(p.Pos, "", "duplicate parameter %q in caveat %q", p.Name, d.Name)
			ok = false
			continue
		}
		pt := c.resolveParamType(p.Type)
		params[p.Name] = pt
		if pt == nil {
			ok = false
			continue
		}
		cv.Params = append(cv.Params, CaveatParam{Name: p.Name, Type: pt.name})
		vars = append(vars, cel.Variable(p.Name, pt.cel))
	}
	if len(d.Body) > MaxCaveatExpressionBytes {
		c.errs.add(d.BodyPos, "", "caveat %q: expression is %d bytes, over the limit of %d bytes", d.Name, len(d.Body), MaxCaveatExpressionBytes)
		ok = false
	} else if c.caveatBytes += len(d.Body); c.caveatBytes > MaxSchemaCaveatBytes {
		if c.caveatBytes-len(d.Body) <= MaxSchemaCaveatBytes {
			// Reported once, at the caveat that passes the limit.
			c.errs.add(d.BodyPos, "", "caveat %q: the schema's caveat expressions total more than the limit of %d bytes", d.Name, MaxSchemaCaveatBytes)
		}
		ok = false
	}
	if !ok || strings.TrimSpace(d.Body) == "" {
		return nil
	}
	base, err := baseEnv()
	if err != nil {
		c.errs.add(d.Pos, "", "caveat %q: CEL environment: %v", d.Name, err)
		return nil
	}
	env, err := base.Extend(vars...)
	if err != nil {
		c.errs.add(d.NamePos, "", "caveat %q: %v", d.Name, err)
		return nil
	}
	checked, iss := env.Compile(d.Body)
	if iss != nil && iss.Err() != nil {
		for _, e := range iss.Errors() {
			c.errs.add(c.celPosition(d, e.Location.Line(), e.Location.Column()), "", "caveat %q: %s", d.Name, e.Message)
		}
		return nil
	}
	if !checked.OutputType().IsExactType(cel.BoolType) {
		c.errs.add(d.BodyPos, "", "caveat %q: expression must be boolean, but it is %s", d.Name, checked.OutputType())
		return nil
	}
	full, err := env.Program(checked, cel.CostLimit(CaveatCostLimit))
	if err != nil {
		c.errs.add(d.BodyPos, "", "caveat %q: %v", d.Name, err)
		return nil
	}
	partial, err := env.Program(checked, cel.EvalOptions(cel.OptPartialEval), cel.CostLimit(CaveatCostLimit))
	if err != nil {
		c.errs.add(d.BodyPos, "", "caveat %q: %v", d.Name, err)
		return nil
	}
	cv.program = &caveatProgram{full: full, partial: partial, params: params}
	return cv
}

// celPosition maps a CEL error location (1-based line, 0-based column
// within the normalized body) back to the schema source.
func (c *compiler) celPosition(d *CaveatDecl, line, col int) Position {
	if line <= 1 {
		return Position{Line: d.BodyPos.Line, Column: d.BodyPos.Column + max(col, 0)}
	}
	indent := 0
	if strings.Contains(d.Body, "\n") {
		indent = d.bodyIndent
	}
	return Position{Line: d.BodyPos.Line + line - 1, Column: 1 + indent + max(col, 0)}
}

// Evaluate decides the caveat for context (parameter name → JSON-compatible
// value). Parameters absent from context are unknown: if the outcome depends
// on them it is undecided and Missing names them.
func (c *Caveat) Evaluate(context map[string]any) (CaveatOutcome, error) {
	if c.program == nil {
		return CaveatOutcome{}, fmt.Errorf("caveat %q: not compiled", c.Name)
	}
	vars := make(map[string]any, len(c.Params))
	var unknown []*cel.AttributePatternType
	for _, p := range c.Params {
		v, present := context[p.Name]
		if !present {
			unknown = append(unknown, cel.AttributePattern(p.Name))
			continue
		}
		pt := c.program.params[p.Name]
		if pt.hasAny {
			// A request's context reaches here unvalidated; values of
			// typed parameters nest no deeper than their type.
			if err := graph.ValidateContextDepth(p.Name, v); err != nil {
				return CaveatOutcome{}, fmt.Errorf("caveat %q: %w", c.Name, err)
			}
		}
		cv, err := convertParam(pt, v)
		if err != nil {
			return CaveatOutcome{}, fmt.Errorf("caveat %q: parameter %q%w", c.Name, p.Name, err)
		}
		vars[p.Name] = cv
	}
	var out ref.Val
	var err error
	if len(unknown) == 0 {
		out, _, err = c.program.full.Eval(vars)
	} else {
		act, perr := cel.PartialVars(vars, unknown...)
		if perr != nil {
			return CaveatOutcome{}, fmt.Errorf("caveat %q: %w", c.Name, perr)
		}
		out, _, err = c.program.partial.Eval(act)
	}
	if err != nil {
		return CaveatOutcome{}, fmt.Errorf("caveat %q: %w", c.Name, err)
	}
	if u, ok := out.(*types.Unknown); ok {
		return CaveatOutcome{Missing: unknownParams(u)}, nil
	}
	b, ok := out.(types.Bool)
	if !ok {
		return CaveatOutcome{}, fmt.Errorf("caveat %q: expression evaluated to %s, not a boolean", c.Name, out.Type().TypeName())
	}
	return CaveatOutcome{Satisfied: bool(b)}, nil
}

// unknownParams lists the variables an undecided result depends on.
func unknownParams(u *types.Unknown) []string {
	seen := map[string]bool{}
	var names []string
	for _, id := range u.IDs() {
		trails, _ := u.GetAttributeTrails(id)
		for _, t := range trails {
			if v := t.Variable(); !seen[v] {
				seen[v] = true
				names = append(names, v)
			}
		}
	}
	sort.Strings(names)
	return names
}

// paramError is a conversion failure; its text continues
// `parameter "x"` (a path like `[2]` may come first).
type paramError struct {
	path     string
	expected string
	got      string
	detail   string
}

func (e *paramError) Error() string {
	s := fmt.Sprintf("%s: expected %s, got %s", e.path, e.expected, e.got)
	if e.detail != "" {
		s += " (" + e.detail + ")"
	}
	return s
}

// jsonKind names a JSON-compatible value's kind for error messages.
func jsonKind(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case float64, float32, int, int32, int64, uint, uint32, uint64, json.Number:
		return "number"
	case string:
		if len(v) > 40 {
			v = v[:40] + "..."
		}
		return fmt.Sprintf("string %q", v)
	case []any:
		return "list"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// convertParam converts a JSON-compatible value to the CEL value of type t.
func convertParam(t *paramType, v any) (any, error) { return convertValue(t, v) }

func mismatch(t *paramType, v any, detail string) error {
	return &paramError{expected: t.name, got: jsonKind(v), detail: detail}
}

func convertValue(t *paramType, v any) (any, error) {
	if n, ok := v.(json.Number); ok {
		f, err := n.Float64()
		if err != nil {
			return nil, mismatch(t, v, err.Error())
		}
		v = f
	}
	switch {
	case t.name == "any":
		return v, nil
	case strings.HasPrefix(t.name, "list<"):
		list, ok := v.([]any)
		if !ok {
			return nil, mismatch(t, v, "")
		}
		out := make([]any, len(list))
		for i, x := range list {
			cx, err := convertValue(t.elem, x)
			if err != nil {
				return nil, prefixPath(err, fmt.Sprintf("[%d]", i))
			}
			out[i] = cx
		}
		return out, nil
	case strings.HasPrefix(t.name, "map<"):
		m, ok := v.(map[string]any)
		if !ok {
			return nil, mismatch(t, v, "")
		}
		out := make(map[string]any, len(m))
		for k, x := range m {
			cx, err := convertValue(t.elem, x)
			if err != nil {
				return nil, prefixPath(err, fmt.Sprintf("[%q]", k))
			}
			out[k] = cx
		}
		return out, nil
	}
	return convertScalar(t, v)
}

func prefixPath(err error, p string) error {
	if pe, ok := err.(*paramError); ok {
		pe.path = p + pe.path
	}
	return err
}

func convertScalar(t *paramType, v any) (any, error) {
	switch t.name {
	case "bool":
		if b, ok := v.(bool); ok {
			return b, nil
		}
	case "string":
		if s, ok := v.(string); ok {
			return s, nil
		}
	case "int":
		if i, ok := v.(int64); ok {
			return i, nil
		}
		if f, ok := number(v); ok {
			if f != math.Trunc(f) || f < math.MinInt64 || f >= math.MaxInt64 {
				return nil, mismatch(t, v, fmt.Sprintf("%v is not an integer in range", f))
			}
			return int64(f), nil
		}
	case "uint":
		if f, ok := number(v); ok {
			if f != math.Trunc(f) || f < 0 || f >= math.MaxUint64 {
				return nil, mismatch(t, v, fmt.Sprintf("%v is not a non-negative integer in range", f))
			}
			return uint64(f), nil
		}
	case "double":
		if f, ok := number(v); ok {
			return f, nil
		}
	case "bytes":
		switch b := v.(type) {
		case string:
			return []byte(b), nil
		case []byte:
			return b, nil
		}
	case "duration":
		switch d := v.(type) {
		case string:
			parsed, err := time.ParseDuration(d)
			if err != nil {
				return nil, mismatch(t, v, `write durations like "90s" or "1h30m"`)
			}
			return parsed, nil
		case time.Duration:
			return d, nil
		}
	case "timestamp":
		switch ts := v.(type) {
		case string:
			parsed, err := time.Parse(time.RFC3339Nano, ts)
			if err != nil {
				return nil, mismatch(t, v, `write timestamps in RFC 3339, like "2026-01-02T15:04:05Z"`)
			}
			return parsed, nil
		case time.Time:
			return ts, nil
		}
	case "ipaddress":
		switch ip := v.(type) {
		case string:
			addr, err := netip.ParseAddr(ip)
			if err != nil {
				return nil, mismatch(t, v, "not an IPv4 or IPv6 address")
			}
			return ipAddress{addr: addr}, nil
		case netip.Addr:
			return ipAddress{addr: ip}, nil
		}
	}
	return nil, mismatch(t, v, "")
}

// number accepts the numeric kinds JSON decoding and Go callers produce.
func number(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case float32:
		return float64(n), true
	case int:
		return float64(n), true
	case int32:
		return float64(n), true
	case int64:
		return float64(n), true
	case uint:
		return float64(n), true
	case uint32:
		return float64(n), true
	case uint64:
		return float64(n), true
	}
	return 0, false
}
