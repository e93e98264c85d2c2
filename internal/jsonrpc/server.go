package jsonrpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sort"
	"sync"
)

const (
	// RequestSizeMax bytes of one request object: SPDK's largest requests
	// (load_config of a big topology) stay well under it.
	RequestSizeMax = 4 << 20
	// ConnsMax connections are served at once; more wait in the listen
	// backlog. Operators' scripts open one or a few.
	ConnsMax = 256
)

// Error codes of JSON-RPC 2.0 section 5.1, as SPDK uses them.
const (
	CodeParseError     = -32700
	CodeInvalidRequest = -32600
	CodeMethodNotFound = -32601
	CodeInvalidParams  = -32602
	CodeInternalError  = -32603
)

// Error is a JSON-RPC error object. A handler returns one to choose the code;
// any other error becomes CodeInvalidParams with the error's text, which is
// what SPDK answers when a method's parameters do not fit.
type Error struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return fmt.Sprintf("%s (code %d)", e.Message, e.Code) }

// Errorf makes an *Error with code and a formatted message.
func Errorf(code int, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Handler answers one method. params is the raw "params" member (nil when
// absent); the result is marshalled as "result".
type Handler func(ctx context.Context, params json.RawMessage) (any, error)

// Method is a registered method and its description for rpc_get_methods
// and `sluice rpc --list`.
type Method struct {
	Name    string
	Params  string // one line: the parameters, SPDK's names
	Handler Handler
}

// Server serves registered methods on listeners.
type Server struct {
	log *slog.Logger

	// lock: the method table and the connection set; taken per request to
	// look a method up and per connection, never on the I/O path.
	mu      sync.Mutex
	methods map[string]Method
	conns   map[net.Conn]struct{}
	closed  bool
	wg      sync.WaitGroup
	slots   chan struct{}
}

// NewServer makes a server with no methods.
func NewServer(log *slog.Logger) *Server {
	return &Server{log: log, methods: map[string]Method{}, conns: map[net.Conn]struct{}{},
		slots: make(chan struct{}, ConnsMax)}
}

// Register adds a method; a duplicate name is an error.
func (s *Server) Register(m Method) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m.Name == "" || m.Handler == nil {
		return fmt.Errorf("jsonrpc: method %q without a name or handler", m.Name)
	}
	if _, dup := s.methods[m.Name]; dup {
		return fmt.Errorf("jsonrpc: method %q registered twice", m.Name)
	}
	s.methods[m.Name] = m
	return nil
}

// Methods lists the registered methods by name.
func (s *Server) Methods() []Method {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Method, 0, len(s.methods))
	for _, m := range s.methods {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Serve accepts connections on l until l is closed or Close is called.
func (s *Server) Serve(l net.Listener) error {
	for {
		s.slots <- struct{}{}
		c, err := l.Accept()
		if err != nil {
			<-s.slots
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			<-s.slots
			return nil
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(c)
	}
}

// Close ends every connection and waits for their handlers to return.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

type request struct {
	Version string          `json:"jsonrpc"`
	Method  *string         `json:"method"`
	Params  json.RawMessage `json:"params"`
	ID      json.RawMessage `json:"id"`
}

type response struct {
	Version string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  any             `json:"result,omitempty"`
	Error   *Error          `json:"error,omitempty"`
}

// limitedReader fails a read once more than RequestSizeMax bytes have been
// read since the last reset: one request may not exceed it.
type limitedReader struct {
	r    io.Reader
	left int
}

var errTooLarge = errors.New("request larger than RequestSizeMax")

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		return 0, errTooLarge
	}
	if len(p) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= n
	return n, err
}

func (s *Server) serveConn(c net.Conn) {
	defer func() {
		c.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		<-s.slots
		s.wg.Done()
	}()
	lr := &limitedReader{r: c, left: RequestSizeMax}
	dec := json.NewDecoder(lr)
	enc := json.NewEncoder(c)
	for {
		// Bytes already buffered belong to the next request: count them in.
		buffered := 0
		if b, ok := dec.Buffered().(interface{ Len() int }); ok {
			buffered = b.Len()
		}
		lr.left = RequestSizeMax + buffered
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
				return
			}
			msg := "Parse error"
			if errors.Is(err, errTooLarge) {
				msg = fmt.Sprintf("Parse error: request larger than %d bytes", RequestSizeMax)
			}
			enc.Encode(response{Version: "2.0", ID: json.RawMessage("null"),
				Error: &Error{Code: CodeParseError, Message: msg}})
			return // J2: the stream cannot be resynchronised
		}
		resp, reply := s.handle(raw)
		if reply {
			if err := enc.Encode(resp); err != nil {
				return
			}
		}
	}
}

// handle answers one request object; reply is false for a notification (J1).
func (s *Server) handle(raw json.RawMessage) (resp response, reply bool) {
	resp = response{Version: "2.0", ID: json.RawMessage("null")}
	var req request
	if err := json.Unmarshal(raw, &req); err != nil {
		resp.Error = &Error{Code: CodeInvalidRequest, Message: "Invalid request"}
		return resp, true
	}
	if len(req.ID) > 0 {
		if !validID(req.ID) {
			resp.Error = &Error{Code: CodeInvalidRequest, Message: "Invalid request: id must be a number, string or null"}
			return resp, true
		}
		resp.ID = req.ID
	}
	if req.Version != "2.0" || req.Method == nil {
		resp.Error = &Error{Code: CodeInvalidRequest, Message: "Invalid request"}
		return resp, true
	}
	s.mu.Lock()
	m, ok := s.methods[*req.Method]
	s.mu.Unlock()
	if !ok {
		resp.Error = &Error{Code: CodeMethodNotFound, Message: "Method not found"}
		return resp, len(req.ID) > 0
	}
	result, err := s.call(m, req.Params)
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			e = &Error{Code: CodeInvalidParams, Message: err.Error()}
		}
		resp.Error = e
	} else {
		if result == nil {
			result = true // SPDK answers methods without a result with true
		}
		resp.Result = result
	}
	return resp, len(req.ID) > 0
}

// call runs a handler; a panic is that request's internal error only.
func (s *Server) call(m Method, params json.RawMessage) (result any, err error) {
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("rpc method panicked", "method", m.Name, "panic", v)
			result, err = nil, &Error{Code: CodeInternalError, Message: fmt.Sprintf("internal error in %s", m.Name)}
		}
	}()
	return m.Handler(context.Background(), params)
}

func validID(id json.RawMessage) bool {
	switch id[0] {
	case '"', 'n', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return true
	}
	return false
}

// DecodeParams decodes params strictly into v: unknown members are an
// error naming them, as SPDK's decoders reject them. Absent params leave v
// as it is.
func DecodeParams(params json.RawMessage, v any) error {
	if len(params) == 0 || string(params) == "null" {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(params))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &Error{Code: CodeInvalidParams, Message: "Invalid parameters: " + err.Error()}
	}
	return nil
}
