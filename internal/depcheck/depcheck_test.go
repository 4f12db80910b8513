package depcheck

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/berth-dev/berth/"

// allowed is the table of ../shared/ARCHITECTURE.md: which project packages
// each package's production code may import. "*" allows every one.
var allowed = map[string][]string{
	"cas":                {},
	"mount":              {},
	"netns":              {},
	"chain":              {"cas", "mount"},
	"pull":               {"chain", "cas"},
	"push":               {"chain", "cas"},
	"build":              {"chain", "run", "cas"},
	"offline":            {"chain", "cas"},
	"run":                {"chain", "mount", "netns", "cas", "run/shim"},
	"run/shim":           {},
	"httpapi":            {"cas", "chain", "mount", "pull", "push", "build", "offline", "run", "netns"},
	"cli":                {"httpapi"},
	"fixtures":           {"*"},
	"fixtures/load":      {"*"},
	"cmd/berthd":         {"*"},
	"cmd/berth":          {"*"},
	"cmd/berth-fixtures": {"*"},
	"cmd/berth-shim":     {"*"},
	"cmd/berth-bench":    {"*"},
	"internal/depcheck":  {},
}

// projectImports maps each package directory to the project packages its
// files import, split into production and test files.
func projectImports(t *testing.T, root string) (prod, test map[string]map[string]bool) {
	t.Helper()
	prod, test = map[string]map[string]bool{}, map[string]map[string]bool{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (strings.HasPrefix(name, ".") || name == "bin" || name == "build" || name == "testdata" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		rel = filepath.ToSlash(rel)
		target := prod
		if strings.HasSuffix(path, "_test.go") {
			target = test
		}
		if target[rel] == nil {
			target[rel] = map[string]bool{}
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(p, module) {
				target[rel][strings.TrimPrefix(p, module)] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return prod, test
}

func violations(prod, test map[string]map[string]bool) []string {
	var out []string
	check := func(pkg string, imports map[string]bool, extra ...string) {
		rules, known := allowed[pkg]
		if !known {
			out = append(out, pkg+": package is not in the ARCHITECTURE.md table")
			return
		}
		if slices.Contains(rules, "*") {
			return
		}
		for imp := range imports {
			if imp == pkg || slices.Contains(rules, imp) || slices.Contains(extra, imp) {
				continue
			}
			out = append(out, pkg+" imports "+imp)
		}
	}
	for pkg, imps := range prod {
		check(pkg, imps)
	}
	for pkg, imps := range test {
		// Tests may also use the fixtures, and a graph driver: a pipeline
		// package's tests open the chain store they write into.
		check(pkg, imps, "fixtures", "fixtures/load", "mount")
	}
	slices.Sort(out)
	return out
}

func TestImportsFollowArchitecture(t *testing.T) {
	prod, test := projectImports(t, filepath.Join("..", ".."))
	for _, v := range violations(prod, test) {
		t.Error(v)
	}
	if len(prod) < 10 {
		t.Fatalf("found only %d packages: is the walk rooted at the module?", len(prod))
	}
}

// The check itself must catch a wrong import, or it proves nothing.
func TestDepcheckCatchesAWrongImport(t *testing.T) {
	prod := map[string]map[string]bool{
		"cas":     {"chain": true},
		"chain":   {"cas": true},
		"nowhere": {},
	}
	got := violations(prod, nil)
	want := []string{"cas imports chain", "nowhere: package is not in the ARCHITECTURE.md table"}
	if !slices.Equal(got, want) {
		t.Fatalf("violations %v, want %v", got, want)
	}
}
