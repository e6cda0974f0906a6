package proxy

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// TestOnlyOwnersCloseClientSockets: a session's loop reads and writes its socket's descriptor
// directly (rawio.Own), which is safe only while no other goroutine can close the socket and
// let the descriptor be reused by another connection under a read or write. So `.nc.Close()`
// appears only where the closer owns the connection; anywhere else a session's socket is shut
// down (shutdownClient). A new call must be added here with the reason it is safe.
func TestOnlyOwnersCloseClientSockets(t *testing.T) {
	allowed := map[string]string{
		"session.end":       "the session's owner ends it",
		"session.serveFrom": "the goroutine that owns the session, as it ends",
		"Cluster.Drain":     "only a connection without CloseRead (a pipe: no descriptor, no rawio)",
		"dedConn.Close":     "a dedicated backend connection, not a client's",
		"psLink.close":      "a pub/sub link to a node, not a client's",
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	seen := map[string]bool{}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Body == nil {
				continue
			}
			fn := fd.Name.Name
			if fd.Recv != nil && len(fd.Recv.List) == 1 {
				typ := fd.Recv.List[0].Type
				if st, ok := typ.(*ast.StarExpr); ok {
					typ = st.X
				}
				if id, ok := typ.(*ast.Ident); ok {
					fn = id.Name + "." + fn
				}
			}
			ast.Inspect(fd.Body, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok || sel.Sel.Name != "Close" {
					return true
				}
				if inner, ok := sel.X.(*ast.SelectorExpr); ok && inner.Sel.Name == "nc" {
					if _, ok := allowed[fn]; !ok {
						t.Errorf("%s: %s closes a connection's nc: only its owner may (shut a client's down with shutdownClient)",
							fset.Position(call.Pos()), fn)
					}
					seen[fn] = true
				}
				return true
			})
		}
	}
	for fn := range allowed {
		if !seen[fn] {
			t.Errorf("%s no longer closes nc: drop it from the list", fn)
		}
	}
}
