// Package doctest reads the runnable examples out of a Markdown document,
// so a test can run them and a document's examples cannot drift from the
// code they describe.
//
// Parse returns the fenced code blocks of a document with the line each
// opens on. The first word of a fence's info string is the block's
// language; a file=NAME word names the file the block's text is saved as
// before the blocks after it run (```zed file=schema.zed). The line
// directly before an opening fence may be a skip marker with a reason:
//
//	<!-- doc-test: skip (needs PostgreSQL) -->
//
// A "doc-test:" comment in any other form, or a marker not directly
// followed by a fence, is an error, so a misspelt marker fails instead of
// being ignored.
//
// Commands splits a shell block into commands: a line and the lines a
// trailing backslash, an open quote, parenthesis or here-document carry
// on to. Lines starting with "# " directly under a command are the
// command's expected output ("#" alone is an empty line of output); other
// comments are only comments.
//
// Match compares a command's output with its expected output after Mask
// has replaced what changes from run to run (zookies and other tokens,
// times, durations) on both sides, trailing white space is dropped and
// lines that are JSON are compacted; "…" in the expected output stands for
// any text within a line, and a line of only "…" for any number of lines.
//
// The package neither runs commands nor reads files: the caller does.
package doctest
