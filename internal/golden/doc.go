// Package golden runs data-driven tests kept in text files of cases, in the
// style of cockroachdb/datadriven. A file is a sequence of cases:
//
//	# Comments start with # and, like blank lines, may come between cases.
//	command arg...
//	input lines, blank ones included
//	----
//	expected output, up to the first blank line
//
// The input is every line between the command line and the first line that
// is exactly "----"; a case without that line is an error naming the file
// and the line of its command. Unfenced expected output ends at the first
// blank (or white-space-only) line, so output that holds one, or that
// begins with "----", is fenced: a second "----" opens it and a "----"
// "----" pair closes it:
//
//	command
//	----
//	----
//	first paragraph
//
//	second paragraph
//	----
//	----
//
// The harness compares the output a test function returns for each case
// with the expected output; output that does not end in a newline is given
// one. Errors of the code under test belong in the output ("error: ..."),
// not in test failures. With -rewrite (the Rewrite flag) each file is
// rewritten with the actual outputs instead: only the expected output of
// each case is replaced, so comments, blank lines, command lines and input
// stay byte for byte as they were.
//
// A package brings its testdata and a function that runs one case:
//
//	func TestGolden(t *testing.T) {
//		golden.Run(t, "testdata/*.txt", func(t *testing.T, c *golden.Case) string {
//			switch c.Command {
//			...
//			}
//		})
//	}
//
// Run gives each file a subtest; RunFile runs one file, for tests that
// build state per file.
//
// The grammar is datadriven's, but the package does not use it: datadriven
// trims white space around the input (graph's cases parse untrimmed
// input), reads a case without ---- as one without expected output, and
// parses arguments as key=value pairs, where Pemba's commands take
// relationships, JSON and shell-quoted words.
package golden
