// Package sluice holds only this test: the house rules of ARCHITECTURE.md
// and STYLE.md, enforced on every package of the module.
package sluice

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/sluice-storage/sluice/"

// leafPackages are wire formats and pure logic: the standard library only.
var leafPackages = []string{
	"protocols/nvme", "protocols/nvmf/tcp/pdu", "protocols/iscsi/pdu", "protocols/iscsi/login",
	"protocols/scsi/cdb", "internal/invariants", "internal/mpsc", "internal/jsonrpc",
}

// allowedImports is ARCHITECTURE.md's import table: for a package under the
// key (longest match wins), the prefixes of this module it may import.
var allowedImports = map[string][]string{
	"reactors":       {"internal/invariants", "internal/mpsc"},
	"actors":         {"reactors", "internal/"},
	"drivers":        {"reactors", "services/bdev", "internal/", "protocols/nvme", "protocols/nvmf/tcp/pdu", "drivers/"},
	"services":       {"reactors", "actors", "services/", "internal/"},
	"protocols":      {"services/bdev", "reactors", "actors", "protocols/", "internal/"},
	"conf":           {"conf/"},
	"internal/guest": {"internal/guest/"},
	"internal":       {"internal/"},
	"perf":           {""}, // everything
	"cmd":            {""},
}

// blockingCalls may not appear on the reactor side (non-test files under
// these trees): a reactor never sleeps, yields or waits on a future.
var reactorSide = []string{"reactors", "actors", "services", "drivers", "protocols"}

var bannedCalls = map[string]string{
	"time.Sleep":       "a reactor never sleeps: use a timed poller (Reactor.AddTimer)",
	"runtime.Gosched":  "a reactor never yields to the Go scheduler: return from the poller",
	"RequestFuture":    "a reactor never waits on a future: send a message and handle the reply",
	"sync.WaitGroup":   "a reactor never waits: count completions in the owner's state",
	"sync.RWMutex":     "no locks on the I/O path; a control-plane lock is a sync.Mutex with a // lock: comment",
	"unsafe.Slice":     "", // allowed: listed so the map documents it is considered
	"atomic.AddInt32":  "use the typed atomics (atomic.Int32)",
	"atomic.AddUint64": "use the typed atomics (atomic.Uint64)",
}

type goFile struct {
	path, pkg string // pkg: directory relative to the module root
	file      *ast.File
	test      bool
}

func parseModule(t *testing.T) ([]goFile, *token.FileSet) {
	t.Helper()
	fset := token.NewFileSet()
	var files []goFile
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") && path != "." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
		if err != nil {
			return err
		}
		files = append(files, goFile{path: path, pkg: filepath.Dir(path), file: f,
			test: strings.HasSuffix(path, "_test.go")})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files, fset
}

func rulesFor(pkg string) (allowed []string, leaf bool) {
	for _, l := range leafPackages {
		if pkg == l {
			return nil, true
		}
	}
	best := ""
	for prefix := range allowedImports {
		if (pkg == prefix || strings.HasPrefix(pkg, prefix+"/")) && len(prefix) > len(best) {
			best = prefix
		}
	}
	if best == "" {
		return []string{""}, false // the root lint test itself
	}
	return allowedImports[best], false
}

func TestImportTable(t *testing.T) {
	files, _ := parseModule(t)
	for _, f := range files {
		if f.test {
			continue // tests may use what they need to prove the package
		}
		allowed, leaf := rulesFor(f.pkg)
		for _, imp := range f.file.Imports {
			p := strings.Trim(imp.Path.Value, `"`)
			if leaf {
				if strings.Contains(strings.Split(p, "/")[0], ".") {
					t.Errorf("%s: imports %s; %s is a leaf package: the standard library only", f.path, p, f.pkg)
				}
				continue
			}
			own, ok := strings.CutPrefix(p, module)
			if !ok {
				continue
			}
			permitted := strings.HasPrefix(own, f.pkg) // its own subpackages
			for _, a := range allowed {
				permitted = permitted || own == strings.TrimSuffix(a, "/") || strings.HasPrefix(own, a)
			}
			if !permitted {
				t.Errorf("%s: imports %s; ARCHITECTURE.md lets %s import only %v", f.path, own, f.pkg, allowed)
			}
		}
	}
}

func TestReactorSideNeverBlocks(t *testing.T) {
	files, fset := parseModule(t)
	for _, f := range files {
		if f.test || !underAny(f.pkg, reactorSide) {
			continue
		}
		ast.Inspect(f.file, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			x, ok := sel.X.(*ast.Ident)
			name := sel.Sel.Name
			if ok {
				name = x.Name + "." + sel.Sel.Name
			}
			if why := bannedCalls[name]; why != "" {
				t.Errorf("%s: %s: %s", fset.Position(sel.Pos()), name, why)
			}
			return true
		})
	}
}

// TestMutexesSayWhy: every sync.Mutex field or variable carries a
// "// lock:" comment saying what it guards and why it is off the I/O path.
func TestMutexesSayWhy(t *testing.T) {
	files, fset := parseModule(t)
	for _, f := range files {
		if f.test {
			continue
		}
		src, err := os.ReadFile(f.path)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(src), "\n")
		ast.Inspect(f.file, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok || sel.Sel.Name != "Mutex" {
				return true
			}
			if x, ok := sel.X.(*ast.Ident); !ok || x.Name != "sync" {
				return true
			}
			line := fset.Position(sel.Pos()).Line
			if !hasLockComment(lines, line) {
				t.Errorf("%s: sync.Mutex without a // lock: comment saying what it guards and why",
					fset.Position(sel.Pos()))
			}
			return true
		})
	}
}

// hasLockComment looks at the mutex's line and the comment block above it.
func hasLockComment(lines []string, line int) bool {
	if strings.Contains(lines[line-1], "// lock:") {
		return true
	}
	for i := line - 2; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if !strings.HasPrefix(l, "//") {
			return false
		}
		if strings.HasPrefix(l, "// lock:") {
			return true
		}
	}
	return false
}

// TestPackagesHaveDoc: every non-main package with code has a doc.go.
func TestPackagesHaveDoc(t *testing.T) {
	files, _ := parseModule(t)
	code := map[string]bool{}
	doc := map[string]bool{}
	for _, f := range files {
		if f.test || f.file.Name.Name == "main" || f.pkg == "." {
			continue
		}
		code[f.pkg] = true
		if filepath.Base(f.path) == "doc.go" {
			doc[f.pkg] = true
		}
	}
	for pkg := range code {
		if !doc[pkg] {
			t.Errorf("package %s has no doc.go saying what it owns", pkg)
		}
	}
}

func underAny(pkg string, roots []string) bool {
	for _, r := range roots {
		if pkg == r || strings.HasPrefix(pkg, r+"/") {
			return true
		}
	}
	return false
}
