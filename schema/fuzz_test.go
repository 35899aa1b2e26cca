package schema

import (
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
