package schema

import (
	"encoding/json"
	"slices"
	"testing"
)

// FuzzParseSchema checks that parsing and compiling never panic, that the
// canonical form is stable, and that it compiles exactly like the input.
func FuzzParseSchema(f *testing.F) {
	f.Add("definition user {}\ndefinition doc {\n\trelation viewer: user\n\tpermission view = viewer\n}\n")
	f.Add("use expiration\ncaveat c1(a int) { a > 1 }\ndefinition user {}\ndefinition doc { relation r: user with c1 and expiration | user:* ; permission p = r - (r & r) + nil }")
	f.Fuzz(func(t *testing.T, src string) {
		ast, err := Parse("fuzz.zed", src)
		s, cerr := Compile("fuzz.zed", src)
		if cerr == nil {
			// The compiled form prints back to text that compiles equally.
			again, err := Compile("printed.zed", s.String())
			if err != nil {
				t.Fatalf("printed schema does not compile: %v\n%s", err, s.String())
			}
			if again.String() != s.String() {
				t.Fatalf("printed schema compiles differently:\n%s\nvs\n%s", s.String(), again.String())
			}
		}
		if err != nil {
			return
		}
		formatted := Format(ast)
		ast2, err := Parse("formatted.zed", formatted)
		if err != nil {
			t.Fatalf("formatted output does not parse: %v\ninput: %q\nformatted:\n%s", err, src, formatted)
		}
		if again := Format(ast2); again != formatted {
			t.Fatalf("format is not stable\ninput: %q\nfirst:\n%s\nsecond:\n%s", src, formatted, again)
		}
		s2, cerr2 := Compile("formatted.zed", formatted)
		if (cerr == nil) != (cerr2 == nil) {
			t.Fatalf("input compiles with %v, formatted with %v\ninput: %q\nformatted:\n%s", cerr, cerr2, src, formatted)
		}
		if cerr == nil && s.String() != s2.String() {
			t.Fatalf("formatted schema compiles differently\ninput: %q\n%s\nvs\n%s", src, s.String(), s2.String())
		}
	})
}

// fuzzCaveats declares a caveat for every parameter type, and one taking
// all of them, so arbitrary contexts reach every conversion.
const fuzzCaveats = `
caveat scalars(i int, u uint, d double, b bool, s string, y bytes, t timestamp, du duration, ip ipaddress) {
	i > 0 || u > 0u || d > 0.0 || b || s == "x" || y == b"x" || t > timestamp("2020-01-01T00:00:00Z") || du > duration("1s") || ip.in_cidr("10.0.0.0/8")
}
caveat nested(l list<int>, m map<list<string>>, ll list<list<double>>) {
	size(l) > 1 || ("k" in m && size(m["k"]) > 0) || (size(ll) > 0 && size(ll[0]) > 0)
}
caveat dynamic(a any, la list<any>, ma map<any>) {
	a == 1 || size(la) > 0 || "k" in ma
}
`

// FuzzCaveatEvaluate decides caveats for arbitrary JSON contexts, as a
// check request or a stored relationship supplies them: evaluation never
// panics, and an undecided outcome names only parameters the context left
// out.
func FuzzCaveatEvaluate(f *testing.F) {
	s, err := Compile("fuzz.zed", fuzzCaveats)
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		`{}`,
		`{"i": 1, "u": 2, "d": 0.5, "b": false, "s": "x", "y": "x", "t": "2021-01-01T00:00:00Z", "du": "2s", "ip": "10.1.2.3"}`,
		`{"i": 1.5, "u": -1, "t": "yesterday", "du": "forever", "ip": "::ffff:10.0.0.1"}`,
		`{"l": [1, 2], "m": {"k": ["a"]}, "ll": [[1.5]]}`,
		`{"l": [1, "2"], "m": {"k": [null]}, "ll": [[{}]]}`,
		`{"a": 1, "la": [{"x": [1, [2]]}], "ma": {"k": null}}`,
		`{"a": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}`,
		`{"i": 1e300, "u": 18446744073709551615, "d": -0}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, ctxJSON string) {
		var ctx map[string]any
		if json.Unmarshal([]byte(ctxJSON), &ctx) != nil {
			return
		}
		for _, name := range s.CaveatOrder {
			cv := s.Caveat(name)
			out, err := cv.Evaluate(ctx)
			if err != nil {
				continue
			}
			for _, m := range out.Missing {
				if _, given := ctx[m]; given || !slices.ContainsFunc(cv.Params, func(p CaveatParam) bool { return p.Name == m }) {
					t.Fatalf("caveat %s with %s: missing %q, which is given or not a parameter", name, ctxJSON, m)
				}
			}
			if out.Satisfied && !out.Decided() {
				t.Fatalf("caveat %s with %s: satisfied yet undecided: %+v", name, ctxJSON, out)
			}
		}
	})
}
