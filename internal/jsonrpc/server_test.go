package jsonrpc

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func newTestServer(t testing.TB) (*Server, string) {
	t.Helper()
	s := NewServer(slog.New(slog.NewTextHandler(io.Discard, nil)))
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.Register(Method{Name: "echo", Params: "value", Handler: func(_ context.Context, p json.RawMessage) (any, error) {
		var v struct {
			Value string `json:"value"`
		}
		if err := DecodeParams(p, &v); err != nil {
			return nil, err
		}
		return v.Value, nil
	}}))
	must(s.Register(Method{Name: "nothing", Handler: func(context.Context, json.RawMessage) (any, error) { return nil, nil }}))
	must(s.Register(Method{Name: "fail", Handler: func(context.Context, json.RawMessage) (any, error) {
		return nil, errors.New("bdev Foo not found")
	}}))
	must(s.Register(Method{Name: "boom", Handler: func(context.Context, json.RawMessage) (any, error) { panic("boom") }}))
	path := filepath.Join(t.TempDir(), "rpc.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	t.Cleanup(func() { l.Close(); s.Close() })
	return s, path
}

func TestRegisterDuplicate(t *testing.T) {
	s, _ := newTestServer(t)
	if err := s.Register(Method{Name: "echo", Handler: func(context.Context, json.RawMessage) (any, error) { return nil, nil }}); err == nil {
		t.Fatal("duplicate method accepted")
	}
}

func TestExchanges(t *testing.T) {
	_, path := newTestServer(t)
	tests := []struct{ name, req, want string }{
		{"result", `{"jsonrpc":"2.0","id":1,"method":"echo","params":{"value":"hi"}}`,
			`{"jsonrpc":"2.0","id":1,"result":"hi"}`},
		{"no result is true", `{"jsonrpc":"2.0","id":"a","method":"nothing"}`,
			`{"jsonrpc":"2.0","id":"a","result":true}`},
		{"unknown method", `{"jsonrpc":"2.0","id":2,"method":"nope"}`,
			`{"jsonrpc":"2.0","id":2,"error":{"code":-32601,"message":"Method not found"}}`},
		{"unknown param", `{"jsonrpc":"2.0","id":3,"method":"echo","params":{"valu":"x"}}`,
			`{"jsonrpc":"2.0","id":3,"error":{"code":-32602,"message":"Invalid parameters: json: unknown field \"valu\""}}`},
		{"handler error", `{"jsonrpc":"2.0","id":4,"method":"fail"}`,
			`{"jsonrpc":"2.0","id":4,"error":{"code":-32602,"message":"bdev Foo not found"}}`},
		{"panic", `{"jsonrpc":"2.0","id":5,"method":"boom"}`,
			`{"jsonrpc":"2.0","id":5,"error":{"code":-32603,"message":"internal error in boom"}}`},
		{"wrong version", `{"jsonrpc":"1.0","id":6,"method":"echo"}`,
			`{"jsonrpc":"2.0","id":6,"error":{"code":-32600,"message":"Invalid request"}}`},
		{"no method", `{"jsonrpc":"2.0","id":7}`,
			`{"jsonrpc":"2.0","id":7,"error":{"code":-32600,"message":"Invalid request"}}`},
		{"not an object", `[1,2]`,
			`{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Invalid request"}}`},
		{"object id", `{"jsonrpc":"2.0","id":{},"method":"echo"}`,
			`{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Invalid request: id must be a number, string or null"}}`},
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	for _, tc := range tests {
		io.WriteString(c, tc.req)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := strings.TrimSpace(line); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
	// A notification gets no answer (J1): the next answer is for id 9.
	io.WriteString(c, `{"jsonrpc":"2.0","method":"nothing"}{"jsonrpc":"2.0","id":9,"method":"nothing"}`)
	line, _ := r.ReadString('\n')
	if !strings.Contains(line, `"id":9`) {
		t.Fatalf("after a notification got %s, want the answer to id 9", line)
	}
}

func TestMalformedStreamEndsOnlyThatConnection(t *testing.T) {
	_, path := newTestServer(t)
	good, _ := net.Dial("unix", path)
	defer good.Close()
	bad, _ := net.Dial("unix", path)
	defer bad.Close()
	io.WriteString(bad, `{"jsonrpc":"2.0", "id": 1, "method": ]`)
	bad.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, _ := io.ReadAll(bad) // the error, then EOF (J2)
	if !strings.Contains(string(b), `"code":-32700`) {
		t.Fatalf("malformed request got %q, want a parse error", b)
	}
	if _, err := Call(path, "echo", map[string]string{"value": "still"}, 10*time.Second); err != nil {
		t.Fatalf("another connection failed after a malformed one: %v", err)
	}
}

func TestOversizedRequest(t *testing.T) {
	_, path := newTestServer(t)
	c, _ := net.Dial("unix", path)
	defer c.Close()
	go func() {
		io.WriteString(c, `{"jsonrpc":"2.0","id":1,"method":"echo","params":{"value":"`)
		io.WriteString(c, strings.Repeat("x", RequestSizeMax+10))
	}()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, _ := bufio.NewReader(c).ReadString('\n')
	if !strings.Contains(line, "larger than") {
		t.Fatalf("oversized request got %q", line)
	}
}

func TestCallReturnsServerError(t *testing.T) {
	_, path := newTestServer(t)
	_, err := Call(path, "nope", nil, 10*time.Second)
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeMethodNotFound {
		t.Fatalf("Call(nope) = %v, want method not found", err)
	}
}

// FuzzHandle: any request object gets a well-formed answer, never a panic.
func FuzzHandle(f *testing.F) {
	for _, seed := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"echo","params":{"value":"hi"}}`,
		`{"jsonrpc":"2.0","id":null,"method":"nothing"}`,
		`{"jsonrpc":"2.0","method":"boom","params":[1]}`,
		`{"id":"x"}`, `[]`, `"s"`, `{"jsonrpc":"2.0","id":-1e400,"method":"echo"}`,
	} {
		f.Add([]byte(seed))
	}
	s, _ := newTestServer(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		if !json.Valid(b) {
			return
		}
		resp, reply := s.handle(b)
		if !reply {
			return
		}
		out, err := json.Marshal(resp)
		if err != nil {
			t.Fatalf("answer to %q does not marshal: %v", b, err)
		}
		if (resp.Error == nil) == (resp.Result == nil) {
			t.Fatalf("answer %s has both or neither of result and error", out)
		}
	})
}
