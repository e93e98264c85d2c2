package jsonrpc

import (
	"encoding/json"
	"fmt"
	"net"
	"time"
)

// Call sends one request on the Unix socket at path and returns the raw
// result, or the server's *Error.
func Call(path, method string, params any, timeout time.Duration) (json.RawMessage, error) {
	c, err := net.DialTimeout("unix", path, timeout)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w (is sluice running?)", path, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	req := map[string]any{"jsonrpc": "2.0", "id": 1, "method": method}
	if params != nil {
		req["params"] = params
	}
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return nil, fmt.Errorf("send %s: %w", method, err)
	}
	var resp struct {
		Result json.RawMessage `json:"result"`
		Error  *Error          `json:"error"`
	}
	if err := json.NewDecoder(c).Decode(&resp); err != nil {
		return nil, fmt.Errorf("read the answer to %s: %w", method, err)
	}
	if resp.Error != nil {
		return nil, resp.Error
	}
	return resp.Result, nil
}
