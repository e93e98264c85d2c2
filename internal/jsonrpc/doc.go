// Package jsonrpc is the JSON-RPC 2.0 server and client of Sluice's control
// socket, framed as SPDK frames it: a stream of JSON objects on a Unix
// socket, no length prefix, one response object per request object.
//
// The server knows no methods: cmd/sluice registers them by name with their
// handlers. Errors use JSON-RPC's codes and SPDK's messages (-32700 "Parse
// error", -32600 "Invalid request", -32601 "Method not found", -32602
// "Invalid parameters", -32603 internal error), so SPDK's scripts/rpc.py
// reads them as it reads SPDK's.
//
// Every request is hostile until checked: a request larger than
// RequestSizeMax, a body that is not JSON, a missing or wrong "jsonrpc"
// or "method" gets an error object, never a panic; a handler's panic
// becomes an internal error for that request alone.
//
// Invariants:
//
//	J1. Every request with an id gets exactly one response; a notification
//	    (no id) gets none, as JSON-RPC 2.0 section 4.1 says.
//	J2. A malformed stream ends that connection after the error response;
//	    other connections are untouched.
//
// It imports only the standard library.
package jsonrpc
