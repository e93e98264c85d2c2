package conf

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// Error is one problem with a topology. Error() prints it as
//
//	file:line: field.path: value, want what would be accepted
//
// e.g. "topo.yaml:14: bdevs[2].block_size: 3000, want a power of two in
// 512..4096". When Msg is set it stands where the value would ("missing",
// "unknown key", "not supported yet…"). Parts that are empty are left out
// together with their separator.
type Error struct {
	File  string // the name given to Parse, Load's path; "" for a Topology built in code
	Line  int    // 1-based; 0 when the problem has no line (the whole file, code-built)
	Field string // path of the field: "bdevs[2].block_size"; "" for the whole file
	Value string // the value as written
	Msg   string // what is wrong when it is not the value itself
	Want  string // what would be accepted
}

func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		b.WriteString(e.File + ":" + strconv.Itoa(e.Line) + ": ")
	case e.File != "":
		b.WriteString(e.File + ": ")
	case e.Line > 0:
		b.WriteString("line " + strconv.Itoa(e.Line) + ": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	if e.Msg != "" {
		b.WriteString(e.Msg)
	} else {
		b.WriteString(quoteValue(e.Value))
	}
	if e.Want != "" {
		b.WriteString(", want " + e.Want)
	}
	return b.String()
}

// quoteValue leaves a value as written unless it could be misread inside a
// message: empty, or holding spaces, commas, quotes or unprintable runes.
func quoteValue(v string) string {
	if v == "" || strings.IndexFunc(v, func(r rune) bool {
		return unicode.IsSpace(r) || r == ',' || r == '"' || !unicode.IsPrint(r)
	}) >= 0 {
		return strconv.Quote(v)
	}
	return v
}

// Errors is every problem found in one topology, in line order. Parse, Load,
// ParseFor, LoadFor and Validate return their problems as an *Errors (C5).
type Errors struct {
	List []Error
}

// Error prints one problem per line.
func (e *Errors) Error() string {
	lines := make([]string, len(e.List))
	for i := range e.List {
		lines[i] = e.List[i].Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap gives each problem as an *Error, for errors.As.
func (e *Errors) Unwrap() []error {
	errs := make([]error, len(e.List))
	for i := range e.List {
		errs[i] = &e.List[i]
	}
	return errs
}

// source is where each field of a parsed Topology was written: the places
// and texts that let checks made after decoding (validate, checkGraph) still
// point into the file. A Topology built in code has an empty source.
type source struct {
	file      string
	positions map[string]position // field path -> its key or list item
	texts     map[string]string   // field path -> scalar as written
	cores     []coreItem          // reactors.cores as written, item by item

	// marshaled is the Topology as parsed and filled, marshaled: Validate
	// trusts the positions above only while the Topology still marshals to it.
	marshaled []byte
}

// position is a place in the file, 1-based; the zero position is nowhere.
type position struct {
	line, column int
}

// coreItem is one entry of reactors.cores: an id or an a-b range.
type coreItem struct {
	path   string // "reactors.cores[1]"
	text   string // "4-7"
	lo, hi int    // the ids it names, lo <= hi
}

func newSource(file string) *source {
	return &source{file: file, positions: map[string]position{}, texts: map[string]string{}}
}

// position returns where path was written, or its nearest ancestor the file
// has: a missing field is reported at the mapping that lacks it.
func (s *source) position(path string) position {
	for ; path != ""; path = parentPath(path) {
		if p, ok := s.positions[path]; ok {
			return p
		}
	}
	return position{}
}

// line returns the line of path (see position), 0 if unknown.
func (s *source) line(path string) int { return s.position(path).line }

// text returns path's value as written, or fallback when the file has none.
func (s *source) text(path, fallback string) string {
	if t, ok := s.texts[path]; ok {
		return t
	}
	return fallback
}

// parentPath strips the last element: "bdevs[2].size" -> "bdevs[2]" -> "bdevs".
func parentPath(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

// checker collects problems. A field that has a problem is marked bad, and
// later rules that read it (or anything under a bad ancestor) skip, so one
// mistake is reported once, where it was made.
type checker struct {
	src     *source
	bad     map[string]bool
	errs    []Error
	columns []int // column of each of errs, to order those on one line
}

func newChecker(src *source) *checker {
	return &checker{src: src, bad: map[string]bool{}}
}

// add records e against field path, where path was written.
func (c *checker) add(path string, e Error) {
	c.addAt(path, c.src.position(path), e)
}

// addAt records e against field path, at position at.
func (c *checker) addAt(path string, at position, e Error) {
	e.File, e.Field, e.Line = c.src.file, path, at.line
	c.errs = append(c.errs, e)
	c.columns = append(c.columns, at.column)
	c.bad[path] = true
}

// value reports that path holds value where want is needed.
func (c *checker) value(path, value, want string) {
	c.add(path, Error{Value: value, Want: want})
}

// problem reports msg about path (the value is not the point: missing, unknown…).
func (c *checker) problem(path, msg, want string) {
	c.add(path, Error{Msg: msg, Want: want})
}

// ok reports whether none of paths, nor any of their ancestors, is bad.
func (c *checker) ok(paths ...string) bool {
	for _, p := range paths {
		for ; p != ""; p = parentPath(p) {
			if c.bad[p] {
				return false
			}
		}
	}
	return true
}

// result returns every problem in the order of the file (by line, then
// column, then as found), at most errorsMax of them, or nil.
func (c *checker) result() error {
	if len(c.errs) == 0 {
		return nil
	}
	order := make([]int, len(c.errs))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return cmp.Or(cmp.Compare(c.errs[a].Line, c.errs[b].Line), cmp.Compare(c.columns[a], c.columns[b]))
	})
	errs := make([]Error, 0, min(len(order), errorsMax+1))
	for _, i := range order[:min(len(order), errorsMax)] {
		errs = append(errs, c.errs[i])
	}
	if more := len(order) - errorsMax; more > 0 {
		errs = append(errs, Error{File: c.src.file, Msg: strconv.Itoa(more) + " more problems not shown"})
	}
	return &Errors{List: errs}
}
